// How answers and errors are shown: an error's message and code, its details, and plain words for 401/403.

import { definitionList, fill, h } from "./dom.js";

let askForAnotherKey = () => {};

/** The action behind "Enter another key" buttons (set once by main.js). */
export function setKeyPrompt(action) {
  askForAnotherKey = action;
}

/** Plain words for what went wrong and what to do, or null when the service's message says it all. */
export function explanation(error) {
  if (error.status === 401) {
    return "The service did not accept this API key: it is wrong, or it has been revoked or rotated. Enter another key.";
  }
  if (error.status === 403 && error.details.required_scope) {
    const scope = error.details.required_scope;
    return `This key lacks the “${scope}” scope, which this action needs. Ask an admin for a key with the ${scope} scope.`;
  }
  if (error.status === 403 && error.details.collection) {
    const allowed = (error.details.key_collections ?? []).join(", ") || "none";
    return `This key may not use the collection “${error.details.collection}” (it may use: ${allowed}).`;
  }
  if (error.status === 429 && error.retryAfter) {
    return `Too many requests with this key: wait ${error.retryAfter} seconds, then try again.`;
  }
  return null;
}

/** An error box: plain words where we have them, the service's message, code and details. */
export function errorBox(error, { title = "The request was refused", offerAnotherKey = true } = {}) {
  const status = error.status ? ` (HTTP ${error.status})` : "";
  const details = Object.entries(error.details ?? {});
  const plain = explanation(error);
  return h(
    "div",
    { class: "message error", role: "alert", dataset: { code: error.code ?? "" } },
    h("p", { class: "message-title" }, title),
    plain ? h("p", { class: "explanation" }, plain) : null,
    h("p", { class: "error-message" }, error.message ?? String(error)),
    h("p", { class: "error-code" }, "Code: ", h("code", null, error.code ?? "UNKNOWN"), status),
    details.length ? definitionList(details, "facts details") : null,
    error.status === 401 && offerAnotherKey
      ? h(
          "button",
          { type: "button", class: "secondary", on: { click: () => askForAnotherKey() } },
          "Enter another key",
        )
      : null,
  );
}

/** Show an error (ApiError or anything thrown) in a container. */
export function showError(container, error, options) {
  if (!(error && typeof error === "object" && "code" in error)) {
    console.warn("Unexpected error in the console:", error); // our own bug, not the service's answer
    error = { status: 0, code: "CONSOLE_ERROR", message: String(error?.message ?? error), details: {} };
  }
  fill(container, errorBox(error, options));
}

export function showNotice(container, ...children) {
  fill(container, h("div", { class: "message notice", role: "status" }, ...children));
}

export function clearMessages(container) {
  fill(container);
}

/** Run an async action with its button disabled and a busy marker; errors go to the container. */
export async function busy(button, container, action, options) {
  button.disabled = true;
  button.setAttribute("aria-busy", "true");
  try {
    return await action();
  } catch (error) {
    showError(container, error, options);
    return undefined;
  } finally {
    button.disabled = false;
    button.removeAttribute("aria-busy");
  }
}
