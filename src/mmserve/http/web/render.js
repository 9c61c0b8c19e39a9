// Outputs as a person reads them, and the trace as a timeline.

import { h } from "./dom.js";

function isImageSchema(schema) {
  if (!schema) return false;
  if (schema.contentEncoding === "base64" && String(schema.contentMediaType || "").startsWith("image/")) return true;
  return Array.isArray(schema.anyOf) && schema.anyOf.some(isImageSchema);
}

function looksLikeImage(value) {
  return typeof value === "string" && value.length > 64 && /^(iVBORw0KGgo|\/9j\/|R0lGOD|UklGR)/.test(value);
}

function imageType(base64) {
  if (base64.startsWith("/9j/")) return "image/jpeg";
  if (base64.startsWith("R0lGOD")) return "image/gif";
  if (base64.startsWith("UklGR")) return "image/webp";
  return "image/png";
}

/** An <img> of base64 image data. */
export function base64Image(data, alt) {
  return h("img", { src: `data:${imageType(data)};base64,${data}`, alt, class: "shown" });
}

function isMatch(value) {
  return value && typeof value === "object" && "id" in value && "score" in value;
}

function metadataList(metadata) {
  const entries = Object.entries(metadata || {});
  if (!entries.length) return null;
  return h(
    "dl",
    { class: "meta" },
    entries.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, typeof v === "string" ? v : JSON.stringify(v))]),
  );
}

/** A grid of retrieval matches: thumbnail (or text card), score, id, metadata. */
export function matchGrid(matches, imageOf) {
  const grid = h("ul", { class: "grid matches" });
  matches.forEach((match, n) => {
    const payload = match.payload || match;
    const card = h("li", { class: "card" });
    const image = payload.image || (imageOf ? null : undefined);
    if (image) card.append(base64Image(image, `match ${n + 1}: ${match.id}`));
    else if (imageOf) card.append(imageOf(match));
    if (payload.text) card.append(h("p", { class: "text" }, payload.text));
    card.append(
      h("p", { class: "score" }, h("span", { class: "label" }, "score "), Number(match.score).toFixed(3)),
      h("p", { class: "id", title: match.id }, match.id),
    );
    const meta = metadataList(payload.metadata);
    if (meta) card.append(meta);
    grid.append(card);
  });
  return grid;
}

function renderValue(value, schema, name) {
  if (value === null || value === undefined) return h("p", { class: "hint" }, "(none)");
  if (typeof value === "string") {
    if (isImageSchema(schema) || looksLikeImage(value)) return base64Image(value, name);
    return h("p", { class: "text-output" }, value);
  }
  if (typeof value === "number") return h("p", { class: "number" }, Number.isInteger(value) ? String(value) : value.toFixed(4));
  if (typeof value === "boolean") return h("p", { class: "number" }, value ? "yes" : "no");
  if (Array.isArray(value)) {
    if (value.length && value.every(isMatch)) return matchGrid(value);
    if (value.every((v) => typeof v === "string" && looksLikeImage(v))) {
      return h("div", { class: "grid" }, value.map((v, n) => base64Image(v, `${name} ${n + 1}`)));
    }
    if (value.every((v) => typeof v !== "object" || v === null)) {
      return h("ol", { class: "plain" }, value.map((v) => h("li", {}, String(v))));
    }
    return h("ol", { class: "plain" }, value.map((v, n) => h("li", {}, renderValue(v, null, `${name} ${n + 1}`))));
  }
  if (typeof value === "object") {
    if (isMatch(value)) return matchGrid([value]);
    return h(
      "dl",
      { class: "object" },
      Object.entries(value).flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, renderValue(v, null, k))]),
    );
  }
  return h("pre", {}, JSON.stringify(value, null, 2));
}

/** Every output, titled by its name. */
export function renderOutputs(outputs, schema) {
  const props = (schema && schema.properties) || {};
  const box = h("div", { class: "outputs" });
  for (const [name, value] of Object.entries(outputs || {})) {
    box.append(h("section", { class: "output", "data-output": name }, h("h4", {}, name), renderValue(value, props[name], name)));
  }
  return box;
}

/** The trace as a per-step timeline: bars scaled to wall time, with status and details. */
export function renderTrace(trace) {
  const longest = Math.max(1, ...trace.map((t) => t.wall_ms || 0));
  const list = h("ol", { class: "timeline", "aria-label": "Trace" });
  for (const entry of trace) {
    const details = [
      `${(entry.wall_ms || 0).toFixed(1)} ms`,
      entry.batch_size ? `batch ${entry.batch_size}` : null,
      entry.cached ? "cached" : null,
      entry.attempts && entry.attempts > 1 ? `${entry.attempts} attempts` : null,
      entry.items !== null && entry.items !== undefined ? `${entry.items} items` : null,
    ].filter(Boolean);
    const bar = h("span", { class: "bar", "aria-hidden": "true" });
    bar.style.width = `${Math.max(2, Math.round((100 * (entry.wall_ms || 0)) / longest))}%`;
    list.append(
      h(
        "li",
        { class: `step status-${entry.status}`, "data-step": entry.step },
        h("span", { class: "step-name" }, entry.step, h("span", { class: "uses" }, ` (${entry.uses})`)),
        bar,
        h("span", { class: "step-status" }, entry.status),
        h("span", { class: "step-details" }, details.join(" · ")),
        entry.error ? h("p", { class: "error" }, entry.error) : null,
      ),
    );
  }
  return list;
}
