// Identify: who is in a photo. Also detect-only. The threshold slider re-labels from the candidates
// already returned, without uploading again.

import { api, formData } from "./api.js";
import { byId, fill, formatNumber, h } from "./dom.js";
import { candidatesTable, faceFacts, identifiedLabel, thresholdSourceText } from "./faces.js";
import { busy, clearMessages, showNotice } from "./messages.js";
import { drawPhoto, photoPicker } from "./photo.js";

export function setUpIdentify() {
  const form = byId("identify-form");
  const submit = byId("identify-submit");
  const stage = byId("identify-stage");
  const result = byId("identify-result");
  const messages = byId("identify-messages");
  const thresholdBox = byId("identify-threshold");
  const slider = byId("threshold-slider");
  const number = byId("threshold-number");
  const thresholdNote = byId("threshold-note");
  const state = { photo: null, answer: null, mode: "identify", selected: null };

  const picker = photoPicker({
    id: "identify-photo",
    label: "Photo to identify",
    onPhoto: (photo) => {
      Object.assign(state, { photo, answer: null, selected: null });
      thresholdBox.hidden = true;
      fill(result);
      clearMessages(messages);
      render();
    },
  });
  byId("identify-picker").append(picker.element);

  const threshold = () => Number(slider.value);

  function faceLabels() {
    if (!state.answer) return [];
    return state.answer.faces.map((face, index) => {
      if (state.mode === "detect") {
        const label = `face ${index + 1}`;
        return { box: face.box, kind: "face", label, title: `${label}, p=${formatNumber(face.detection_probability)}` };
      }
      const { kind, label } = identifiedLabel(face, threshold());
      return { box: face.box, kind, label, title: `Face ${index + 1}: ${label}` };
    });
  }

  function select(index) {
    state.selected = index;
    render();
  }

  function render() {
    if (!state.photo) return fill(stage);
    const faces = faceLabels();
    drawPhoto(stage, state.photo, { faces, selected: state.selected, onSelect: state.answer ? select : null });
    if (!state.answer) return fill(result);
    const answer = state.answer;
    const summary =
      state.mode === "detect"
        ? `${answer.faces.length} face${answer.faces.length === 1 ? "" : "s"} found in ${answer.width} × ${answer.height} pixels. Nothing was stored.`
        : `${answer.faces_detected} face${answer.faces_detected === 1 ? "" : "s"} found, ${answer.faces.length} identified in “${answer.collection}” (model ${answer.model_id}).`;
    const list = h(
      "ol",
      { class: "face-list" },
      faces.map((face, index) =>
        h(
          "li",
          null,
          h(
            "button",
            {
              type: "button",
              class: `face-button ${face.kind}`,
              "aria-pressed": String(index === state.selected),
              on: { click: () => select(index) },
            },
            face.title,
          ),
        ),
      ),
    );
    const chosen = state.selected === null ? null : answer.faces[state.selected];
    fill(
      result,
      h("p", { class: "summary" }, summary),
      answer.faces.length ? list : h("p", null, "No face was found in this photo."),
      chosen
        ? h(
            "section",
            { class: "face-detail", "aria-label": `Face ${state.selected + 1}` },
            h("h3", null, `Face ${state.selected + 1}`),
            faceFacts(chosen),
            state.mode === "identify" ? candidatesTable(chosen, threshold()) : null,
          )
        : answer.faces.length
          ? h("p", { class: "hint" }, "Click a face (on the photo or in the list) to see its details.")
          : null,
    );
  }

  function setThreshold(value, { fromNumber = false } = {}) {
    const clamped = Math.min(1, Math.max(-1, Number.isFinite(value) ? value : 0));
    slider.value = String(clamped);
    if (!fromNumber) number.value = clamped.toFixed(3);
    render();
  }

  slider.addEventListener("input", () => setThreshold(Number(slider.value)));
  number.addEventListener("input", () => {
    if (number.value !== "" && number.checkValidity()) setThreshold(Number(number.value), { fromNumber: true });
  });

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    if (!state.photo) {
      showNotice(messages, "Choose a photo first.");
      return;
    }
    const mode = new FormData(form).get("mode") === "detect" ? "detect" : "identify";
    const fields = { image: state.photo.blob };
    if (mode === "identify") {
      Object.assign(fields, {
        collection: byId("identify-collection").value.trim() || "default",
        top_k: byId("identify-top-k").value,
        threshold: byId("identify-request-threshold").value,
      });
    }
    clearMessages(messages);
    busy(submit, messages, async () => {
      const answer = await api(mode === "detect" ? "/detect" : "/identify", { method: "POST", form: formData(fields) });
      Object.assign(state, { answer, mode, selected: answer.faces.length === 1 ? 0 : null });
      thresholdBox.hidden = mode !== "identify";
      if (mode === "identify") {
        const source = thresholdSourceText(answer.threshold_source);
        thresholdNote.textContent = `The service matched at ${formatNumber(answer.threshold, 3)}${source ? ` (${source})` : ""}. Moving the slider re-labels the faces from their candidates; nothing is uploaded again.`;
        setThreshold(answer.threshold);
      } else {
        render();
      }
    });
  });

  byId("identify-mode").addEventListener("change", () => {
    const detect = new FormData(form).get("mode") === "detect";
    submit.textContent = detect ? "Detect faces" : "Identify";
    byId("identify-options").hidden = detect;
  });
}
