// The one way the console talks to the service: fetch() to the public API, the key in a header.
// The key lives in sessionStorage only (gone when the tab closes): never in a URL, cookie,
// localStorage or log line.

const KEY_STORAGE = "facerec.apiKey";
const unauthorizedListeners = new Set();

export function storedKey() {
  return sessionStorage.getItem(KEY_STORAGE);
}

export function storeKey(key) {
  sessionStorage.setItem(KEY_STORAGE, key);
}

export function forgetKey() {
  sessionStorage.removeItem(KEY_STORAGE);
}

/** The key's public part (frk_<prefix>), safe to show on screen. */
export function keyPrefix(key) {
  const match = /^(frk_[A-Za-z0-9]+)_/.exec(key ?? "");
  return match ? match[1] : "a key";
}

/** Called with the ApiError whenever the service answers 401 (a wrong, revoked or rotated key). */
export function onUnauthorized(listener) {
  unauthorizedListeners.add(listener);
}

export class ApiError extends Error {
  constructor({ status, code, message, details, retryAfter }) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.details = details ?? {};
    this.retryAfter = retryAfter ?? null;
  }
}

function queryString(query) {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(query ?? {})) {
    if (value !== undefined && value !== null && value !== "") params.set(name, String(value));
  }
  const text = params.toString();
  return text ? `?${text}` : "";
}

/**
 * Call the API: api("/subjects", {query: {limit: 20}}), api("/identify", {method: "POST", form}).
 * Resolves to the parsed JSON (null for 204); rejects with an ApiError in the service's error shape.
 */
export async function api(path, { method = "GET", query, form, json, key = storedKey() } = {}) {
  const headers = { Accept: "application/json" };
  if (key) headers.Authorization = `Bearer ${key}`;
  let body;
  if (form) body = form;
  if (json !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(json);
  }
  let response;
  try {
    response = await fetch(path + queryString(query), {
      method,
      headers,
      body,
      cache: "no-store",
      credentials: "omit",
    });
  } catch {
    throw new ApiError({
      status: 0,
      code: "NETWORK_ERROR",
      message: "The service could not be reached. Check that it is running, then try again.",
    });
  }
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!response.ok) {
    const error = data && typeof data.error === "object" ? data.error : {};
    const failure = new ApiError({
      status: response.status,
      code: error.code ?? `HTTP_${response.status}`,
      message: error.message ?? `The service answered ${response.status} ${response.statusText}.`,
      details: error.details,
      retryAfter: response.headers.get("Retry-After"),
    });
    if (response.status === 401) for (const listener of unauthorizedListeners) listener(failure);
    throw failure;
  }
  return data;
}

/** A multipart form from an object; undefined, null and "" values are left out. */
export function formData(fields) {
  const form = new FormData();
  for (const [name, value] of Object.entries(fields)) {
    if (value === undefined || value === null || value === "") continue;
    if (value instanceof Blob) form.append(name, value, value.name ?? `${name}.jpg`);
    else form.append(name, String(value));
  }
  return form;
}
