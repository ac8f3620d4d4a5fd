// The console's start: ask for a key, check it, then show the views the key can use.

import { setUpAdmin } from "./admin.js";
import { api, forgetKey, keyPrefix, onUnauthorized, storedKey, storeKey } from "./api.js";
import { byId, fill, h } from "./dom.js";
import { setUpEnroll } from "./enroll.js";
import { setUpGallery } from "./gallery.js";
import { setUpIdentify } from "./identify.js";
import { errorBox, explanation, setKeyPrompt } from "./messages.js";
import { refreshCollectionOptions, refreshSubjectOptions } from "./shared.js";
import { setUpTabs } from "./tabs.js";
import { setUpVerify } from "./verify.js";

const keyPanel = byId("key-panel");
const app = byId("app");
const keyMessages = byId("key-messages");
let started = false; // views have been used with some key in this page

function askForKey(reason) {
  forgetKey();
  app.hidden = true;
  byId("key-status").hidden = true;
  keyPanel.hidden = false;
  fill(keyMessages, reason ? errorBox(reason, { title: "This key was not accepted", offerAnotherKey: false }) : null);
  const input = byId("key-input");
  input.value = "";
  input.focus();
}

/** GET /keys tells the key's kind: 200 admin, 403 a valid key without the admin scope, 401 no good. */
async function checkKey(key) {
  try {
    await api("/keys", { key });
    return { admin: true, adminRefusal: null };
  } catch (error) {
    if (error.status === 403) return { admin: false, adminRefusal: error };
    throw error;
  }
}

function start(key, { admin, adminRefusal }) {
  keyPanel.hidden = true;
  app.hidden = false;
  byId("key-status").hidden = false;
  byId("key-summary").textContent = `Using ${keyPrefix(key)}… ${admin ? "(admin)" : ""}`;
  byId("admin-content").hidden = !admin;
  const denied = byId("admin-denied");
  denied.hidden = admin;
  if (!admin) {
    fill(
      denied,
      h(
        "div",
        { class: "message error", role: "status" },
        h("p", { class: "message-title" }, "Key management and the audit log need a key with the admin scope."),
        h("p", { class: "explanation" }, explanation(adminRefusal) ?? adminRefusal.message),
        h(
          "p",
          { class: "error-code" },
          "GET /keys answered ",
          h("code", null, adminRefusal.code),
          ` (HTTP ${adminRefusal.status}).`,
        ),
      ),
    );
  }
  started = true;
  refreshCollectionOptions();
  refreshSubjectOptions("default");
}

byId("key-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const key = byId("key-input").value.trim();
  if (!key) return;
  const button = byId("key-submit");
  button.disabled = true;
  try {
    const kind = await checkKey(key);
    storeKey(key);
    byId("key-input").value = "";
    // A fresh page for a new key: nothing the previous key was shown stays on screen.
    if (started) return location.reload();
    fill(keyMessages);
    start(key, kind);
  } catch (error) {
    fill(keyMessages, errorBox(error, { title: "This key was not accepted", offerAnotherKey: false }));
  } finally {
    button.disabled = false;
  }
});

byId("forget-key").addEventListener("click", () => askForKey(null));
setKeyPrompt(() => askForKey(null));
onUnauthorized((error) => {
  if (!app.hidden) fill(byId("banner"), errorBox(error, { title: "The key stopped working" }));
});

setUpIdentify();
setUpEnroll();
setUpVerify();
const gallery = setUpGallery();
const admin = setUpAdmin();
setUpTabs({ onShow: { gallery: gallery.show, admin: () => byId("admin-content").hidden || admin.show() } });

const saved = storedKey();
if (saved) {
  checkKey(saved).then(
    (kind) => start(saved, kind),
    (error) => askForKey(error.status === 401 ? error : null),
  );
} else {
  askForKey(null);
}
