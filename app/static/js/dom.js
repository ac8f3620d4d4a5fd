// Tiny DOM helpers. Text always goes in as text nodes, never as HTML: names and metadata are user data.

const SVG_NS = "http://www.w3.org/2000/svg";

function apply(element, attributes) {
  for (const [name, value] of Object.entries(attributes ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "on") {
      for (const [event, handler] of Object.entries(value)) element.addEventListener(event, handler);
    } else if (name === "text") {
      element.textContent = String(value);
    } else if (name === "class") {
      element.setAttribute("class", value);
    } else if (name === "dataset") {
      Object.assign(element.dataset, value);
    } else {
      element.setAttribute(name, value === true ? "" : String(value));
    }
  }
}

function append(element, children) {
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

/** An HTML element: h("button", {type: "button", on: {click}}, "Label"). */
export function h(tag, attributes, ...children) {
  const element = document.createElement(tag);
  apply(element, attributes);
  return append(element, children);
}

/** An SVG element, for the face boxes drawn over photos. */
export function svg(tag, attributes, ...children) {
  const element = document.createElementNS(SVG_NS, tag);
  apply(element, attributes);
  return append(element, children);
}

/** Replace an element's children. */
export function fill(element, ...children) {
  element.replaceChildren();
  return append(element, children);
}

export function byId(id) {
  const element = document.getElementById(id);
  if (!element) throw new Error(`The page has no #${id}`);
  return element;
}

export function formatNumber(value, digits = 4) {
  return typeof value === "number" ? value.toFixed(digits) : "—";
}

export function formatDate(value) {
  if (!value) return "—";
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? String(value) : date.toLocaleString();
}

/** A <dl> of name/value pairs; objects and lists are shown as JSON. */
export function definitionList(entries, className = "facts") {
  const list = h("dl", { class: className });
  for (const [name, value] of entries) {
    const shown = value !== null && typeof value === "object" ? JSON.stringify(value) : String(value ?? "—");
    list.append(h("dt", null, name), h("dd", null, shown));
  }
  return list;
}

/** A table from column headings and rows of cells (strings or nodes). */
export function table({ caption, headings, rows, empty = "Nothing here yet." }) {
  const body = h("tbody");
  for (const cells of rows)
    body.append(
      h(
        "tr",
        null,
        cells.map((cell) => h("td", null, cell)),
      ),
    );
  if (rows.length === 0) body.append(h("tr", null, h("td", { colspan: headings.length, class: "empty" }, empty)));
  return h(
    "table",
    null,
    caption ? h("caption", null, caption) : null,
    h(
      "thead",
      null,
      h(
        "tr",
        null,
        headings.map((text) => h("th", { scope: "col" }, text)),
      ),
    ),
    body,
  );
}
