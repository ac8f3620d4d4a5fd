// What the console says about one face: its label at a threshold, and its facts (box, quality, candidates).

import { definitionList, formatNumber, h, table } from "./dom.js";

/** Four decimals, or six where four would round a similarity just under 1 up to 1.0000. */
export function formatSimilarity(value) {
  if (typeof value !== "number") return "—";
  const short = value.toFixed(4);
  return Math.abs(value) < 1 && Math.abs(Number(short)) === 1 ? value.toFixed(6) : short;
}

/** The face's best candidate if it reaches the threshold, else null (unknown): the service's own rule. */
export function matchAt(face, threshold) {
  const best = face.candidates?.[0];
  return best && best.similarity >= threshold ? best : null;
}

/** The label drawn on an identified face's box. */
export function identifiedLabel(face, threshold) {
  const match = matchAt(face, threshold);
  const best = face.candidates?.[0];
  if (match) return { kind: "match", label: `${match.subject} ${formatSimilarity(match.similarity)}` };
  return { kind: "unknown", label: best ? `unknown ${formatSimilarity(best.similarity)}` : "unknown" };
}

export function thresholdSourceText(source) {
  const sources = {
    request: "set in the request",
    collection: "the collection's threshold",
    default: "the service default",
  };
  return source ? (sources[source] ?? source) : null;
}

/** Box, detection probability and (when the service measures it) quality, as a definition list. */
export function faceFacts(face) {
  const { x1, y1, x2, y2 } = face.box;
  const entries = [
    ["Box (pixels)", `${Math.round(x1)}, ${Math.round(y1)} – ${Math.round(x2)}, ${Math.round(y2)}`],
    ["Size", `${Math.round(x2 - x1)} × ${Math.round(y2 - y1)}`],
    ["Detection probability", formatNumber(face.detection_probability)],
  ];
  if (face.quality && typeof face.quality === "object") {
    for (const [name, value] of Object.entries(face.quality)) {
      entries.push([`Quality: ${name}`, typeof value === "number" ? formatNumber(value, 3) : value]);
    }
  }
  return definitionList(entries);
}

export function candidatesTable(face, threshold) {
  const match = matchAt(face, threshold);
  return table({
    caption: "Candidates, best first",
    headings: ["Subject", "Similarity", "At this threshold"],
    rows: (face.candidates ?? []).map((candidate) => [
      candidate.subject,
      formatSimilarity(candidate.similarity),
      match && candidate.subject_id === match.subject_id ? h("strong", null, "match") : "—",
    ]),
    empty: "No candidates: the collection has no enrolled faces.",
  });
}
