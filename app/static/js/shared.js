// Lists several views offer as suggestions: collection names and a collection's subjects.
// They need the manage scope; without it the inputs simply take free text.

import { api } from "./api.js";
import { byId, fill, h } from "./dom.js";

export async function refreshCollectionOptions() {
  try {
    const answer = await api("/collections");
    fill(
      byId("collection-names"),
      answer.items.map((item) => h("option", { value: item.name })),
    );
    return answer.items;
  } catch {
    return null;
  }
}

export async function refreshSubjectOptions(collection) {
  try {
    const answer = await api("/subjects", { query: { collection: collection || "default", limit: 200 } });
    fill(
      byId("subject-names"),
      answer.items.map((item) => h("option", { value: item.name })),
    );
  } catch {
    fill(byId("subject-names"));
  }
}
