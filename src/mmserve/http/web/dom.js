// Small DOM helpers shared by the page's sections.

let counter = 0;

/** A fresh element id with a prefix (labels need ids). */
export function uid(prefix) {
  counter += 1;
  return `${prefix}-${counter}`;
}

/** h("div", {class: "x", onclick: f}, child, "text", ...) */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
    else if (name === "class") el.className = value;
    else if (name === "text") el.textContent = value;
    else if (value === true) el.setAttribute(name, "");
    else el.setAttribute(name, String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** Show an error message in ``slot`` (an element with role=alert), or clear it. */
export function showError(slot, message) {
  slot.textContent = message || "";
  slot.hidden = !message;
}

/** The message of any error, never a stack trace. */
export function messageOf(err) {
  if (err && typeof err.message === "string" && err.message) return err.message;
  return "something went wrong";
}

function isImage(file) {
  return file && (file.type || "").startsWith("image/");
}

/**
 * An image chooser: a file picker, a drop zone and paste, with a preview.
 * Returns {element, files(), clear(), input}. ``multiple`` accepts several files;
 * ``onChange(files)`` hears every change. Non-image files are kept (the server says why it
 * refuses them), so a person sees the API's own message.
 */
export function imagePicker({ label, id, multiple = false, required = false, onChange }) {
  const inputId = id || uid("image");
  let chosen = [];
  const input = h("input", {
    type: "file",
    id: inputId,
    accept: "image/*",
    multiple,
    required,
    class: "file",
  });
  const preview = h("div", { class: "preview", "aria-live": "polite" });
  const zone = h(
    "div",
    { class: "drop", tabindex: "0", role: "group", "aria-label": `${label}: drop or paste an image` },
    h("label", { for: inputId }, label),
    input,
    h("span", { class: "hint" }, multiple ? "or drop / paste images here" : "or drop / paste an image here"),
    preview,
  );

  function set(files) {
    chosen = multiple ? files : files.slice(0, 1);
    preview.replaceChildren();
    for (const file of chosen) {
      if (isImage(file)) {
        const img = h("img", { alt: `preview of ${file.name}` });
        img.src = URL.createObjectURL(file);
        preview.append(h("figure", {}, img, h("figcaption", {}, file.name)));
      } else {
        preview.append(h("p", { class: "hint" }, `${file.name} (${file.type || "unknown type"})`));
      }
    }
    if (onChange) onChange(chosen);
  }

  input.addEventListener("change", () => set(Array.from(input.files || [])));
  zone.addEventListener("dragover", (event) => {
    event.preventDefault();
    zone.classList.add("over");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("over");
    set(Array.from(event.dataTransfer.files || []));
  });
  zone.addEventListener("paste", (event) => {
    const files = Array.from(event.clipboardData.files || []);
    if (files.length) {
      event.preventDefault();
      set(files);
    }
  });
  return {
    element: zone,
    input,
    files: () => chosen,
    clear: () => {
      input.value = "";
      set([]);
    },
  };
}
