// Admin: API keys (create, rotate, revoke; a new secret is shown once) and the audit log.
// Shown only to keys with the admin scope; the service enforces it either way.

import { api } from "./api.js";
import { byId, fill, formatDate, h, table } from "./dom.js";
import { busy, clearMessages, showError } from "./messages.js";

const AUDIT_PAGE = 50;
const SCOPES = ["detect", "verify", "identify", "enroll", "manage", "metrics", "admin"];

export function setUpAdmin() {
  const messages = byId("admin-messages");
  const keysBox = byId("keys");
  const secretBox = byId("secret-box");
  const audit = { offset: 0, filters: {} };
  const keyNames = new Map(); // key id -> "name (prefix)", to say who did what in the audit log

  fill(
    byId("key-scopes"),
    h("legend", null, "Scopes"),
    SCOPES.map((scope) =>
      h("label", { class: "check" }, h("input", { type: "checkbox", name: "scope", value: scope }), ` ${scope}`),
    ),
  );

  function showSecret(issued, verb) {
    const value = byId("secret-value");
    value.textContent = issued.key;
    byId("secret-title").textContent =
      `${verb} key “${issued.name}” (${issued.prefix}). Its secret is shown this once: copy it now.`;
    byId("secret-copied").textContent = "";
    secretBox.hidden = false;
    byId("secret-copy").focus();
  }

  byId("secret-copy").addEventListener("click", async () => {
    const value = byId("secret-value");
    try {
      await navigator.clipboard.writeText(value.textContent);
      byId("secret-copied").textContent = "Copied to the clipboard.";
    } catch {
      getSelection().selectAllChildren(value);
      byId("secret-copied").textContent = "Copying was not allowed here: the key is selected, press Ctrl+C (⌘C).";
    }
  });
  byId("secret-dismiss").addEventListener("click", () => {
    byId("secret-value").textContent = "";
    secretBox.hidden = true;
  });

  async function loadKeys() {
    try {
      const answer = await api("/keys");
      for (const key of answer.items) keyNames.set(key.id, `${key.name} (${key.prefix})`);
      fill(
        keysBox,
        table({
          caption: "API keys (secrets are never stored or shown again)",
          headings: ["Name", "Prefix", "Scopes", "Collections", "Created", "Last used", "State", "Actions"],
          rows: answer.items.map((key) => [
            key.name,
            h("code", null, key.prefix),
            key.scopes.join(", "),
            key.collections === null ? "all" : key.collections.join(", "),
            formatDate(key.created_at),
            formatDate(key.last_used_at),
            key.revoked_at ? `revoked ${formatDate(key.revoked_at)}` : "active",
            key.revoked_at
              ? "—"
              : h(
                  "div",
                  { class: "row" },
                  h(
                    "button",
                    { type: "button", class: "secondary", on: { click: (event) => rotate(key, event.currentTarget) } },
                    "Rotate",
                  ),
                  h(
                    "button",
                    { type: "button", class: "danger", on: { click: (event) => revoke(key, event.currentTarget) } },
                    "Revoke",
                  ),
                ),
          ]),
        }),
      );
    } catch (error) {
      showError(messages, error, { title: "The keys could not be listed" });
    }
  }

  function rotate(key, button) {
    clearMessages(messages);
    busy(
      button,
      messages,
      async () => {
        showSecret(await api(`/keys/${key.id}/rotate`, { method: "POST" }), "Rotated");
        await loadKeys();
        await loadAudit();
      },
      { title: "The key was not rotated" },
    );
  }

  function revoke(key, button) {
    clearMessages(messages);
    busy(
      button,
      messages,
      async () => {
        await api(`/keys/${key.id}`, { method: "DELETE" });
        await loadKeys();
        await loadAudit();
      },
      { title: "The key was not revoked" },
    );
  }

  byId("key-create-form").addEventListener("submit", (event) => {
    event.preventDefault();
    clearMessages(messages);
    const form = new FormData(event.currentTarget);
    const collections = String(form.get("collections") ?? "")
      .split(",")
      .map((name) => name.trim())
      .filter(Boolean);
    const body = {
      name: String(form.get("name") ?? "").trim(),
      scopes: form.getAll("scope"),
      collections: collections.length ? collections : null,
    };
    busy(
      byId("key-create-submit"),
      messages,
      async () => {
        showSecret(await api("/keys", { method: "POST", json: body }), "Created");
        event.target.reset();
        await loadKeys();
        await loadAudit();
      },
      { title: "The key was not created" },
    );
  });

  function isoOrNull(value) {
    return value ? new Date(value).toISOString() : null;
  }

  async function loadAudit() {
    try {
      const page = await api("/audit", { query: { ...audit.filters, limit: AUDIT_PAGE, offset: audit.offset } });
      fill(
        byId("audit"),
        table({
          caption: "Audit log, newest first",
          headings: ["When", "Action", "Outcome", "Collection", "Subjects", "Key", "Details"],
          rows: page.items.map((entry) => [
            formatDate(entry.at),
            entry.action,
            entry.outcome,
            entry.collection ?? "—",
            entry.subject_ids.join(", ") || "—",
            entry.key_id === null ? "—" : (keyNames.get(entry.key_id) ?? entry.key_id),
            h("code", { class: "wrap" }, JSON.stringify(entry.details)),
          ]),
          empty: "No entries match.",
        }),
      );
      const last = Math.min(page.offset + page.items.length, page.total);
      byId("audit-range").textContent = page.total ? `${page.offset + 1}–${last} of ${page.total}` : "0 of 0";
      byId("audit-prev").disabled = page.offset === 0;
      byId("audit-next").disabled = last >= page.total;
    } catch (error) {
      showError(messages, error, { title: "The audit log could not be read" });
    }
  }

  byId("audit-form").addEventListener("submit", (event) => {
    event.preventDefault();
    clearMessages(messages);
    const form = new FormData(event.currentTarget);
    audit.filters = {
      since: isoOrNull(form.get("since")),
      until: isoOrNull(form.get("until")),
      action: String(form.get("action") ?? "").trim(),
      subject_id: String(form.get("subject_id") ?? "").trim(),
    };
    audit.offset = 0;
    loadAudit();
  });
  byId("audit-prev").addEventListener("click", () => {
    audit.offset = Math.max(0, audit.offset - AUDIT_PAGE);
    loadAudit();
  });
  byId("audit-next").addEventListener("click", () => {
    audit.offset += AUDIT_PAGE;
    loadAudit();
  });

  return {
    show: async () => {
      await loadKeys();
      await loadAudit();
    },
  };
}
