// Photos: pick one (file, drag and drop, or webcam), draw it with its face boxes, crop to a face.

import { fill, h, svg } from "./dom.js";

const ACCEPTED = ["image/jpeg", "image/png", "image/webp"];

/** Decode a photo; the browser applies its EXIF rotation, as the service does before detecting. */
export async function loadPhoto(blob, name = blob.name ?? "photo.jpg") {
  const url = URL.createObjectURL(blob);
  const image = new Image();
  image.src = url;
  try {
    await image.decode();
  } finally {
    URL.revokeObjectURL(url);
  }
  return { blob, name, image, width: image.naturalWidth, height: image.naturalHeight };
}

function canvasBlob(canvas, type = "image/jpeg", quality = 0.95) {
  return new Promise((resolve, reject) => {
    canvas.toBlob(
      (blob) => (blob ? resolve(blob) : reject(new Error("The browser could not encode the image."))),
      type,
      quality,
    );
  });
}

/** The face's box plus `margin` of its size on each side, clipped to the photo, as a JPEG. */
export async function cropToFace(photo, box, margin = 0.5) {
  const width = box.x2 - box.x1;
  const height = box.y2 - box.y1;
  const x1 = Math.max(0, Math.floor(box.x1 - width * margin));
  const y1 = Math.max(0, Math.floor(box.y1 - height * margin));
  const x2 = Math.min(photo.width, Math.ceil(box.x2 + width * margin));
  const y2 = Math.min(photo.height, Math.ceil(box.y2 + height * margin));
  const canvas = h("canvas", { width: x2 - x1, height: y2 - y1 });
  canvas.getContext("2d").drawImage(photo.image, x1, y1, x2 - x1, y2 - y1, 0, 0, x2 - x1, y2 - y1);
  const blob = await canvasBlob(canvas);
  return new File([blob], "face-crop.jpg", { type: "image/jpeg" });
}

function cameraProblem(error) {
  if (error?.name === "NotAllowedError" || error?.name === "SecurityError") {
    return "The browser was not allowed to use the camera. Allow it in the site settings, or choose a file.";
  }
  if (error?.name === "NotFoundError" || error?.name === "OverconstrainedError") {
    return "No camera was found. Choose a file instead.";
  }
  if (error?.name === "NotReadableError") return "The camera is in use by another program. Choose a file instead.";
  return `The camera could not be started (${error?.name ?? "unknown error"}). Choose a file instead.`;
}

/**
 * A photo picker: a file input, a drop zone and a webcam button. onPhoto(photo) is called with each
 * decoded photo. Returns {element, reset}.
 */
export function photoPicker({ id, label, onPhoto }) {
  const status = h("p", { class: "picker-status", "aria-live": "polite" });
  const input = h("input", { type: "file", id: `${id}-file`, accept: ACCEPTED.join(","), class: "visually-hidden" });
  const video = h("video", { autoplay: true, muted: true, playsinline: true, class: "camera-preview" });
  let stream = null;

  async function use(blob, name) {
    if (!ACCEPTED.includes(blob.type)) {
      status.textContent = `“${name}” is not a JPEG, PNG or WEBP photo.`;
      return;
    }
    try {
      const photo = await loadPhoto(blob, name);
      status.textContent = `${name} (${photo.width} × ${photo.height})`;
      onPhoto(photo);
    } catch {
      status.textContent = `“${name}” could not be decoded as an image.`;
    }
  }

  function stopCamera() {
    for (const track of stream?.getTracks() ?? []) track.stop();
    stream = null;
    video.srcObject = null;
    camera.hidden = true;
  }

  async function startCamera() {
    if (!navigator.mediaDevices?.getUserMedia) {
      status.textContent = "This browser offers no camera here (it needs https or localhost). Choose a file instead.";
      return;
    }
    try {
      stream = await navigator.mediaDevices.getUserMedia({ video: { width: { ideal: 1280 } }, audio: false });
      video.srcObject = stream;
      camera.hidden = false;
      status.textContent = "Camera on: take the photo when ready.";
    } catch (error) {
      stopCamera();
      status.textContent = cameraProblem(error);
    }
  }

  async function capture() {
    if (!video.videoWidth) {
      status.textContent = "The camera has not sent a picture yet: try again in a moment.";
      return;
    }
    const canvas = h("canvas", { width: video.videoWidth, height: video.videoHeight });
    canvas.getContext("2d").drawImage(video, 0, 0);
    stopCamera();
    const blob = await canvasBlob(canvas, "image/jpeg", 0.92);
    await use(new File([blob], "webcam.jpg", { type: "image/jpeg" }), "webcam.jpg");
  }

  const camera = h(
    "div",
    { class: "camera", hidden: true },
    video,
    h(
      "div",
      { class: "row" },
      h("button", { type: "button", on: { click: capture } }, "Take photo"),
      h("button", { type: "button", class: "secondary", on: { click: stopCamera } }, "Cancel"),
    ),
  );

  input.addEventListener("change", () => {
    const file = input.files?.[0];
    if (file) use(file, file.name);
    input.value = "";
  });

  const zone = h(
    "div",
    { class: "dropzone" },
    h("p", { class: "picker-label" }, label),
    h(
      "div",
      { class: "row" },
      h("label", { class: "button", for: `${id}-file` }, "Choose a photo", input),
      h("button", { type: "button", class: "secondary", on: { click: startCamera } }, "Use the webcam"),
    ),
    h("p", { class: "hint" }, "or drop a JPEG, PNG or WEBP photo here"),
  );
  zone.addEventListener("dragover", (event) => {
    event.preventDefault();
    zone.classList.add("dragging");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("dragging"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("dragging");
    const file = event.dataTransfer?.files?.[0];
    if (file) use(file, file.name);
  });

  const element = h("div", { class: "picker" }, zone, camera, status);
  return { element, reset: () => (status.textContent = "") };
}

/**
 * Draw a photo with one box per face. faces: [{box, label, kind: "match"|"unknown"|"face", title}].
 * onSelect(index) runs when a box is clicked or chosen with Enter/Space. Labels keep about the same
 * size on screen however far the photo is scaled down.
 */
export function drawPhoto(container, photo, { faces = [], selected = null, onSelect = null } = {}) {
  const canvas = h("canvas", { width: photo.width, height: photo.height, class: "photo" });
  canvas.getContext("2d").drawImage(photo.image, 0, 0);
  const overlay = svg("svg", {
    viewBox: `0 0 ${photo.width} ${photo.height}`,
    class: "overlay",
    role: "group",
    "aria-label": `${faces.length} face${faces.length === 1 ? "" : "s"} found`,
  });
  const drawn = faces.map((face, index) => {
    const choose = () => onSelect?.(index);
    const rect = svg("rect", {
      x: face.box.x1,
      y: face.box.y1,
      width: face.box.x2 - face.box.x1,
      height: face.box.y2 - face.box.y1,
    });
    const text = svg("text", { x: face.box.x1 }, face.label);
    overlay.append(
      svg(
        "g",
        {
          class: `face ${face.kind}${index === selected ? " selected" : ""}`,
          tabindex: onSelect ? 0 : null,
          role: onSelect ? "button" : null,
          "aria-label": face.title ?? face.label,
          "aria-pressed": onSelect ? String(index === selected) : null,
          dataset: { face: index },
          on: {
            click: choose,
            keydown: (event) => {
              if (event.key === "Enter" || event.key === " ") {
                event.preventDefault();
                choose();
              }
            },
          },
        },
        rect,
        text,
      ),
    );
    return { box: face.box, rect, text };
  });

  // Sizes in image pixels that come out at about 15 px text and 2.5 px lines on screen.
  function layout() {
    const scale = photo.width / (canvas.clientWidth || photo.width);
    const fontSize = 15 * scale;
    for (const { box, rect, text } of drawn) {
      rect.setAttribute("stroke-width", String(2.5 * scale));
      text.setAttribute("font-size", String(fontSize));
      text.setAttribute("stroke-width", String(3 * scale));
      const above = box.y1 - fontSize * 0.35 > fontSize;
      text.setAttribute("y", String(above ? box.y1 - fontSize * 0.35 : box.y2 + fontSize));
    }
  }
  const stage = h("div", { class: "stage" }, canvas, overlay);
  fill(container, stage);
  layout();
  new ResizeObserver(layout).observe(canvas);
  return stage;
}
