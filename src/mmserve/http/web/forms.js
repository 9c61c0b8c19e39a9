// A form generated from a workflow's input JSON Schema.

import { fileBase64 } from "./api.js";
import { h, imagePicker, showError, uid } from "./dom.js";

function isImageSchema(schema) {
  return schema.contentEncoding === "base64" && String(schema.contentMediaType || "").startsWith("image/");
}

function kindOf(schema) {
  if (isImageSchema(schema)) return "image";
  if (Array.isArray(schema.enum)) return "enum";
  const type = Array.isArray(schema.type) ? schema.type.find((t) => t !== "null") : schema.type;
  return type || "json";
}

function numberInput(id, schema, kind) {
  const attrs = { id, type: "number", step: kind === "integer" ? "1" : "any" };
  if (schema.minimum !== undefined) attrs.min = schema.minimum;
  if (schema.maximum !== undefined) attrs.max = schema.maximum;
  if (schema.exclusiveMinimum !== undefined) attrs.min = schema.exclusiveMinimum;
  if (schema.exclusiveMaximum !== undefined) attrs.max = schema.exclusiveMaximum;
  const input = h("input", attrs);
  if (typeof schema.default === "number") input.value = String(schema.default);
  return input;
}

function control(id, schema, kind) {
  if (kind === "enum") {
    const select = h("select", { id });
    for (const option of schema.enum) select.append(h("option", { value: JSON.stringify(option) }, String(option)));
    if (schema.default !== undefined) select.value = JSON.stringify(schema.default);
    return select;
  }
  if (kind === "integer" || kind === "number") return numberInput(id, schema, kind);
  if (kind === "boolean") {
    const box = h("input", { id, type: "checkbox" });
    box.checked = schema.default === true;
    return box;
  }
  if (kind === "string") {
    const long = (schema.maxLength || 0) > 200 || /question|prompt|text|instruction/i.test(id);
    const field = h(long ? "textarea" : "input", { id, rows: long ? "2" : null, type: long ? null : "text" });
    if (schema.minLength !== undefined) field.minLength = schema.minLength;
    if (schema.maxLength !== undefined) field.maxLength = schema.maxLength;
    if (typeof schema.default === "string") field.value = schema.default;
    return field;
  }
  const area = h("textarea", { id, rows: "3", placeholder: "JSON" });
  if (schema.default !== undefined && schema.default !== null) area.value = JSON.stringify(schema.default);
  return area;
}

function describe(schema, kind) {
  const parts = [];
  if (schema.description) parts.push(schema.description);
  const limits = [];
  if (schema.minimum !== undefined) limits.push(`min ${schema.minimum}`);
  if (schema.maximum !== undefined) limits.push(`max ${schema.maximum}`);
  if (schema.minLength !== undefined) limits.push(`at least ${schema.minLength} characters`);
  if (limits.length) parts.push(`(${limits.join(", ")})`);
  if (kind === "json") parts.push("(JSON)");
  return parts.join(" ");
}

/**
 * Build the form for ``schema`` (an object schema) into ``container``.
 * Returns {values(): Promise<object>, fieldError(name, message), clearErrors()}.
 */
export function schemaForm(schema, container, idPrefix) {
  const properties = schema.properties || {};
  const required = new Set(schema.required || []);
  const fields = new Map();
  for (const [name, prop] of Object.entries(properties)) {
    const kind = kindOf(prop);
    const id = `${idPrefix}-${name}`;
    const error = h("p", { class: "error", id: uid("err"), role: "alert", hidden: true });
    const help = describe(prop, kind);
    const helpId = help ? uid("help") : null;
    const mark = required.has(name) ? h("span", { class: "req", "aria-label": "required" }, " *") : null;
    let element;
    let read;
    if (kind === "image") {
      const picker = imagePicker({ label: `${name}`, id, required: required.has(name) });
      picker.input.setAttribute("aria-describedby", [helpId, error.id].filter(Boolean).join(" "));
      if (mark) picker.element.querySelector("label").append(mark);
      element = h("div", { class: "field", "data-field": name }, picker.element);
      read = async () => {
        const [file] = picker.files();
        return file ? fileBase64(file) : undefined;
      };
    } else {
      const input = control(id, prop, kind);
      input.setAttribute("aria-describedby", [helpId, error.id].filter(Boolean).join(" "));
      if (required.has(name)) input.required = kind !== "boolean";
      const label = h("label", { for: id }, name, mark);
      element = h("div", { class: `field field-${kind}`, "data-field": name }, label, input);
      read = async () => readValue(input, kind, prop);
    }
    if (help) element.append(h("p", { class: "help", id: helpId }, help));
    element.append(error);
    container.append(element);
    fields.set(name, { read, error });
  }
  return {
    async values() {
      const out = {};
      for (const [name, field] of fields) {
        const value = await field.read();
        if (value !== undefined) out[name] = value;
      }
      return out;
    },
    fieldError(name, message) {
      const field = name && fields.get(name);
      if (!field) return false;
      showError(field.error, message);
      return true;
    },
    clearErrors() {
      for (const field of fields.values()) showError(field.error, "");
    },
  };
}

function readValue(input, kind, schema) {
  if (kind === "boolean") return input.checked;
  if (kind === "enum") return JSON.parse(input.value);
  const raw = input.value;
  if (raw === "") {
    if (kind === "string" && schema.default === undefined) return "";
    return undefined;
  }
  if (kind === "integer" || kind === "number") return Number(raw);
  if (kind === "string") return raw;
  try {
    return JSON.parse(raw);
  } catch {
    return raw; // the server says what is wrong with it
  }
}
