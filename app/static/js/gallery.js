// Gallery: collections, a collection's subjects (search by name, a page at a time), one subject's
// faces, rename, metadata and delete with its receipt.

import { api } from "./api.js";
import { byId, definitionList, fill, formatDate, formatNumber, h, table } from "./dom.js";
import { busy, clearMessages, showError, showNotice } from "./messages.js";
import { refreshCollectionOptions } from "./shared.js";

const PAGE_SIZE = 20;

export function setUpGallery() {
  const messages = byId("gallery-messages");
  const collections = byId("collections");
  const subjectsList = byId("subjects-list");
  const detail = byId("subject-detail");
  const state = { collection: "default", q: "", offset: 0, total: 0, subject: null };

  async function loadCollections() {
    const items = await refreshCollectionOptions();
    if (items === null) {
      // Ask again to show why (the shared helper swallows errors).
      try {
        await api("/collections");
      } catch (error) {
        showError(messages, error, { title: "The gallery could not be read" });
      }
      return;
    }
    const hasThresholds = items.some((item) => "match_threshold" in item);
    fill(
      collections,
      table({
        caption: "Collections",
        headings: ["Name", "Subjects", "Faces", ...(hasThresholds ? ["Match threshold"] : []), "Retention"],
        rows: items.map((item) => [
          h(
            "button",
            {
              type: "button",
              class: "link",
              "aria-pressed": String(item.name === state.collection),
              on: { click: () => openCollection(item.name) },
            },
            item.name,
          ),
          String(item.subject_count),
          String(item.face_count),
          ...(hasThresholds
            ? [item.match_threshold === null ? "service default" : formatNumber(item.match_threshold, 3)]
            : []),
          item.retention_days === null ? "no limit" : `${item.retention_days} days`,
        ]),
      }),
    );
  }

  function openCollection(name) {
    Object.assign(state, { collection: name, offset: 0, subject: null });
    fill(detail);
    loadCollections();
    loadSubjects();
  }

  async function loadSubjects() {
    byId("subjects-heading").textContent = `Subjects in “${state.collection}”`;
    try {
      const page = await api("/subjects", {
        query: { collection: state.collection, q: state.q, limit: PAGE_SIZE, offset: state.offset },
      });
      state.total = page.total;
      fill(
        subjectsList,
        page.items.map((subject) =>
          h(
            "li",
            null,
            h("button", { type: "button", class: "link", on: { click: () => openSubject(subject.id) } }, subject.name),
            h("span", { class: "hint" }, ` ${subject.face_count} face${subject.face_count === 1 ? "" : "s"}`),
          ),
        ),
      );
      if (page.items.length === 0)
        subjectsList.append(
          h("li", { class: "empty" }, state.q ? `No subject’s name contains “${state.q}”.` : "No subjects yet."),
        );
      const last = Math.min(page.offset + page.items.length, page.total);
      byId("subjects-range").textContent = page.total ? `${page.offset + 1}–${last} of ${page.total}` : "0 of 0";
      byId("subjects-prev").disabled = page.offset === 0;
      byId("subjects-next").disabled = last >= page.total;
    } catch (error) {
      fill(subjectsList);
      showError(messages, error, { title: "The subjects could not be listed" });
    }
  }

  async function openSubject(id) {
    clearMessages(messages);
    try {
      const [subject, faces] = await Promise.all([api(`/subjects/${id}`), api(`/subjects/${id}/faces`)]);
      state.subject = subject;
      renderSubject(subject, faces.items);
    } catch (error) {
      showError(messages, error, { title: "The subject could not be read" });
    }
  }

  function renderSubject(subject, faces) {
    const name = h("input", {
      id: "subject-name",
      value: subject.name,
      required: true,
      maxlength: 200,
      autocomplete: "off",
    });
    const metadata = h("textarea", { id: "subject-metadata", rows: 4, spellcheck: "false" });
    metadata.value = subject.metadata === null ? "" : JSON.stringify(subject.metadata, null, 2);
    const save = h("button", { type: "submit" }, "Save changes");
    const editForm = h(
      "form",
      { class: "stack", on: { submit: (event) => saveSubject(event, subject, name, metadata, save) } },
      h("label", { for: "subject-name" }, "Name"),
      name,
      h("label", { for: "subject-metadata" }, "Metadata (a JSON object; empty clears it)"),
      metadata,
      save,
    );
    const confirmBox = h("div", { class: "confirm", hidden: true });
    const deleteButton = h(
      "button",
      { type: "button", class: "danger", on: { click: () => confirmDelete(subject, confirmBox) } },
      "Delete subject…",
    );
    fill(
      detail,
      h("h3", null, subject.name),
      definitionList([
        ["Id", subject.id],
        ["Collection", subject.collection],
        ["Faces", subject.face_count],
        ["Created", formatDate(subject.created_at)],
        ["Updated", formatDate(subject.updated_at)],
      ]),
      editForm,
      h("h4", null, "Enrolled faces"),
      h(
        "p",
        { class: "hint" },
        "Photos are never stored: each face is kept as its embedding, box and landmarks, with the SHA-256 of the uploaded file.",
      ),
      table({
        headings: ["Box (pixels)", "Detection", "Model", "Enrolled", "Image SHA-256"],
        rows: faces.map((face) => [
          `${Math.round(face.box.x1)}, ${Math.round(face.box.y1)} – ${Math.round(face.box.x2)}, ${Math.round(face.box.y2)}`,
          formatNumber(face.detection_probability),
          face.model_id,
          formatDate(face.created_at),
          h("code", { title: face.image_sha256 }, `${face.image_sha256.slice(0, 12)}…`),
        ]),
        empty: "No faces.",
      }),
      deleteButton,
      confirmBox,
    );
  }

  function saveSubject(event, subject, nameInput, metadataInput, button) {
    event.preventDefault();
    clearMessages(messages);
    const changes = {};
    if (nameInput.value.trim() !== subject.name) changes.name = nameInput.value.trim();
    const text = metadataInput.value.trim();
    try {
      const parsed = text ? JSON.parse(text) : null;
      if (parsed !== null && (typeof parsed !== "object" || Array.isArray(parsed))) throw new Error("not an object");
      if (JSON.stringify(parsed) !== JSON.stringify(subject.metadata)) changes.metadata = parsed;
    } catch {
      return showNotice(messages, 'Metadata must be a JSON object, such as {"team": "red"}, or empty.');
    }
    if (Object.keys(changes).length === 0) return showNotice(messages, "Nothing to save: no field was changed.");
    busy(
      button,
      messages,
      async () => {
        const updated = await api(`/subjects/${subject.id}`, { method: "PATCH", json: changes });
        await Promise.all([openSubject(subject.id), loadSubjects()]);
        showNotice(messages, `Saved “${updated.name}”.`);
      },
      { title: "The changes were not saved" },
    );
  }

  function confirmDelete(subject, box) {
    box.hidden = false;
    const yes = h(
      "button",
      { type: "button", class: "danger", on: { click: () => deleteSubject(subject, yes) } },
      "Delete for good",
    );
    fill(
      box,
      h("p", null, `Delete “${subject.name}” and all ${subject.face_count} of its faces? This cannot be undone.`),
      h(
        "div",
        { class: "row" },
        yes,
        h("button", { type: "button", class: "secondary", on: { click: () => (box.hidden = true) } }, "Cancel"),
      ),
    );
    yes.focus();
  }

  function deleteSubject(subject, button) {
    busy(
      button,
      messages,
      async () => {
        const receipt = await api(`/subjects/${subject.id}`, { method: "DELETE" });
        fill(detail);
        showNotice(
          messages,
          h("p", { class: "message-title" }, `Deleted “${receipt.name}” for good.`),
          h("p", null, "Deletion receipt (also written to the audit log):"),
          definitionList(
            [
              ["Subject id", receipt.id],
              ["Name", receipt.name],
              ["Collection", receipt.collection],
              ["Faces deleted", receipt.deleted_faces],
              ["Deleted at", formatDate(receipt.deleted_at)],
            ],
            "facts receipt",
          ),
        );
        await Promise.all([loadSubjects(), loadCollections()]);
      },
      { title: "The subject was not deleted" },
    );
  }

  byId("subjects-search").addEventListener("submit", (event) => {
    event.preventDefault();
    state.q = byId("subjects-q").value.trim();
    state.offset = 0;
    loadSubjects();
  });
  byId("subjects-prev").addEventListener("click", () => {
    state.offset = Math.max(0, state.offset - PAGE_SIZE);
    loadSubjects();
  });
  byId("subjects-next").addEventListener("click", () => {
    state.offset += PAGE_SIZE;
    loadSubjects();
  });
  byId("gallery-refresh").addEventListener("click", () => {
    clearMessages(messages);
    loadCollections();
    loadSubjects();
  });

  return {
    show: () => {
      loadCollections();
      loadSubjects();
    },
  };
}
