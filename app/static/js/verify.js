// Verify: two photos side by side; are they the same person?

import { api, formData } from "./api.js";
import { byId, definitionList, fill, formatNumber, h } from "./dom.js";
import { formatSimilarity, thresholdSourceText } from "./faces.js";
import { busy, clearMessages, showNotice } from "./messages.js";
import { drawPhoto, photoPicker } from "./photo.js";

export function setUpVerify() {
  const photos = { a: null, b: null };
  const stages = { a: byId("verify-stage-a"), b: byId("verify-stage-b") };
  const messages = byId("verify-messages");
  const result = byId("verify-result");
  const submit = byId("verify-submit");

  for (const side of ["a", "b"]) {
    const picker = photoPicker({
      id: `verify-photo-${side}`,
      label: side === "a" ? "First photo" : "Second photo",
      onPhoto: (photo) => {
        photos[side] = photo;
        fill(result);
        drawPhoto(stages[side], photo);
      },
    });
    byId(`verify-picker-${side}`).append(picker.element);
  }

  byId("verify-form").addEventListener("submit", (event) => {
    event.preventDefault();
    clearMessages(messages);
    if (!photos.a || !photos.b) return showNotice(messages, "Choose both photos first.");
    busy(submit, messages, async () => {
      const fields = { image: photos.a.blob, image_b: photos.b.blob, threshold: byId("verify-threshold").value };
      const answer = await api("/verify", { method: "POST", form: formData(fields) });
      const label = answer.same_person ? "same person" : "different people";
      const kind = answer.same_person ? "match" : "unknown";
      drawPhoto(stages.a, photos.a, { faces: [{ box: answer.face.box, kind, label }] });
      if (answer.face_b) drawPhoto(stages.b, photos.b, { faces: [{ box: answer.face_b.box, kind, label }] });
      const source = thresholdSourceText(answer.threshold_source);
      fill(
        result,
        h("p", { class: `verdict ${kind}` }, answer.same_person ? "Same person" : "Not the same person"),
        definitionList([
          ["Similarity", formatSimilarity(answer.similarity)],
          ["Threshold", `${formatNumber(answer.threshold, 3)}${source ? ` (${source})` : ""}`],
          ["same_person", String(answer.same_person)],
        ]),
        h("p", { class: "hint" }, "Each photo's largest face was compared. Nothing was stored."),
      );
    });
  });
}
