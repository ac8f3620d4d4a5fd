// Enrol: pick a photo, click one of its faces, name it. The API enrols the one face of an image, so a
// group photo's chosen face is sent as a crop around it (or, when it is the largest, with
// on_multiple_faces=largest).

import { api, formData } from "./api.js";
import { byId, definitionList, fill, h } from "./dom.js";
import { faceFacts } from "./faces.js";
import { busy, clearMessages, showError, showNotice } from "./messages.js";
import { cropToFace, drawPhoto, photoPicker } from "./photo.js";
import { refreshSubjectOptions } from "./shared.js";

export function setUpEnroll() {
  const form = byId("enroll-form");
  const submit = byId("enroll-submit");
  const stage = byId("enroll-stage");
  const selection = byId("enroll-selection");
  const messages = byId("enroll-messages");
  const subjectInput = byId("enroll-subject");
  const collectionInput = byId("enroll-collection");
  const state = { photo: null, faces: null, selected: null, enrolled: new Map() };

  function render() {
    if (!state.photo) return fill(stage);
    const faces = (state.faces ?? []).map((face, index) => {
      const enrolled = state.enrolled.get(index);
      const label = enrolled ? `${enrolled} ✓` : index === state.selected ? "chosen" : `face ${index + 1}`;
      return { box: face.box, kind: enrolled ? "match" : "face", label, title: `Face ${index + 1}: ${label}` };
    });
    drawPhoto(stage, state.photo, { faces, selected: state.selected, onSelect: select });
    if (state.faces === null) {
      selection.textContent = "No faces found yet: the whole photo will be sent (it must show exactly one face).";
    } else if (state.selected === null) {
      selection.textContent = state.faces.length ? "Click the face to enrol." : "No face was found in this photo.";
    } else {
      fill(
        selection,
        `Face ${state.selected + 1} of ${state.faces.length} chosen.`,
        faceFacts(state.faces[state.selected]),
      );
    }
  }

  function select(index) {
    state.selected = index;
    render();
  }

  const picker = photoPicker({
    id: "enroll-photo",
    label: "Photo with the face to enrol",
    onPhoto: async (photo) => {
      Object.assign(state, { photo, faces: [], selected: null, enrolled: new Map() });
      clearMessages(messages);
      render();
      try {
        const answer = await api("/detect", { method: "POST", form: formData({ image: photo.blob }) });
        if (state.photo !== photo) return; // another photo was chosen meanwhile
        state.faces = answer.faces;
        state.selected = answer.faces.length === 1 ? 0 : null;
      } catch (error) {
        state.faces = null;
        showError(messages, error, { title: "The faces could not be found (POST /detect)" });
      }
      render();
    },
  });
  byId("enroll-picker").append(picker.element);

  async function upload() {
    const { photo, faces, selected } = state;
    if (faces === null || faces.length <= 1) return { image: photo.blob, note: null };
    if (selected === 0) {
      const note = "The chosen face is the largest: sent the photo with on_multiple_faces=largest.";
      return { image: photo.blob, on_multiple_faces: "largest", note, cropped: false };
    }
    // A generous margin keeps the face's surroundings, which the detector needs to find it again.
    const image = await cropToFace(photo, faces[selected].box, 0.5);
    const note = "Sent a crop around the chosen face (the photo has several), so the service saw one face.";
    return { image, on_multiple_faces: "largest", note, cropped: true };
  }

  function showEnrolled(answer, { note, cropped }) {
    const outcome = [
      answer.subject_created ? `New subject “${answer.subject}” created` : `Added to “${answer.subject}”`,
      ` in collection “${answer.collection}”.`,
      answer.created ? "" : " This image was already enrolled for the subject: nothing new was stored.",
    ].join("");
    const warnings = answer.warnings ?? [];
    const ignored = answer.ignored_faces ?? [];
    showNotice(
      messages,
      h("p", { class: "message-title" }, outcome),
      note ? h("p", { class: "hint" }, note) : null,
      definitionList([
        ["Subject id", answer.subject_id],
        ["Face id", answer.face_id],
        ["Model", answer.model_id],
      ]),
      answer.face && !cropped ? faceFacts(answer.face) : null,
      warnings.length
        ? h(
            "div",
            { class: "warnings" },
            h("h3", null, "Warnings"),
            h(
              "ul",
              null,
              warnings.map((warning) =>
                h(
                  "li",
                  null,
                  `${warning.message} (`,
                  h("code", null, warning.code),
                  ")",
                  warning.details ? ` ${JSON.stringify(warning.details)}` : "",
                ),
              ),
            ),
          )
        : null,
      ignored.length
        ? h(
            "div",
            null,
            h("h3", null, "Faces not enrolled"),
            h(
              "ul",
              null,
              ignored.map((face) =>
                h(
                  "li",
                  null,
                  `${face.reason}: box ${Math.round(face.box.x1)}, ${Math.round(face.box.y1)} – ${Math.round(face.box.x2)}, ${Math.round(face.box.y2)}`,
                ),
              ),
            ),
          )
        : null,
      h("p", { class: "hint" }, "The photo itself was not stored: only the face's embedding, box and landmarks."),
    );
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    clearMessages(messages);
    if (!state.photo) return showNotice(messages, "Choose a photo first.");
    if (state.faces !== null && state.faces.length === 0)
      return showNotice(messages, "This photo has no face to enrol.");
    if (state.faces !== null && state.selected === null) return showNotice(messages, "Click the face to enrol first.");
    busy(
      submit,
      messages,
      async () => {
        const { note, cropped, ...sent } = await upload();
        const index = state.selected;
        const fields = {
          ...sent,
          subject: subjectInput.value.trim(),
          collection: collectionInput.value.trim() || "default",
          metadata: byId("enroll-metadata").value.trim(),
          on_conflict: byId("enroll-on-conflict").value,
          on_low_similarity: byId("enroll-on-low-similarity").value,
        };
        const answer = await api("/enroll", { method: "POST", form: formData(fields) });
        if (index !== null) state.enrolled.set(index, answer.subject);
        render();
        showEnrolled(answer, { note, cropped });
        refreshSubjectOptions(fields.collection);
      },
      { title: "The face was not enrolled" },
    );
  });

  collectionInput.addEventListener("change", () => refreshSubjectOptions(collectionInput.value.trim()));
}
