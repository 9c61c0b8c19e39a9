// The Collections section: list, browse page by page, search, add images.

import { fileBase64, getJson, imageUrl, postJson } from "./api.js";
import { h, imagePicker, messageOf, showError } from "./dom.js";
import { matchGrid } from "./render.js";

const PAGE = 24;
const THUMBNAIL = 192;
const UPLOAD_BATCH = 4;

function path(name) {
  return `/v1/collections/${encodeURIComponent(name)}`;
}

export async function loadCollections(banner) {
  const body = document.querySelector("#collection-table tbody");
  let found;
  try {
    found = (await getJson("/v1/collections")).collections;
  } catch (err) {
    showError(banner, `Cannot list the collections: ${messageOf(err)}`);
    return;
  }
  body.replaceChildren();
  if (!found.length) {
    body.append(h("tr", {}, h("td", { colspan: "4", class: "hint" }, "No collections yet.")));
  }
  for (const c of found) {
    body.append(
      h(
        "tr",
        { "data-collection": c.name },
        h("td", {}, h("button", { type: "button", class: "link", onclick: () => open(c, banner) }, c.name)),
        h("td", { class: "num" }, String(c.count)),
        h("td", {}, c.modality),
        h("td", { class: "space" }, `${c.space.backend} · ${c.space.model_id} · ${c.space.dim}d`),
      ),
    );
  }
}

function sized(modality, total) {
  return `${modality} · ${total} item${total === 1 ? "" : "s"}`;
}

/** A thumbnail <img> loaded through the API (with the key), or a note why not. */
function thumbnail(name, id) {
  const img = h("img", { alt: id, class: "thumb", loading: "lazy" });
  imageUrl(`${path(name)}/items/${encodeURIComponent(id)}/image?size=${THUMBNAIL}`)
    .then((url) => {
      img.src = url;
    })
    .catch((err) => img.replaceWith(h("p", { class: "error" }, messageOf(err))));
  return img;
}

function open(collection, banner) {
  const name = collection.name;
  const view = document.getElementById("collection-view");
  const browse = h("div", { id: "browse" });
  const count = h("span", { class: "hint", id: "collection-count" }, sized(collection.modality, collection.count));

  function added() {
    page(0);
    loadCollections(banner);
  }
  view.replaceChildren(
    ...[
    h("h3", { id: "collection-title" }, name, " ", count),
    searchForm(collection),
    collection.modality === "image" ? addForm(collection, added) : null,
    h("h4", {}, "Items"),
    browse,
    ].filter(Boolean),
  );

  async function page(offset) {
    const status = h("p", { class: "error", role: "alert", hidden: true });
    let answer;
    try {
      answer = await getJson(`${path(name)}/items?offset=${offset}&limit=${PAGE}`);
    } catch (err) {
      browse.replaceChildren(status);
      showError(status, messageOf(err));
      return;
    }
    const grid = h("ul", { class: "grid items", "aria-label": `Items of ${name}` });
    for (const item of answer.items) {
      const card = h("li", { class: "card", "data-item": item.id });
      if (item.has_image) card.append(thumbnail(name, item.id));
      if (item.text) card.append(h("p", { class: "text" }, item.text));
      card.append(h("p", { class: "id", title: item.id }, item.id));
      const meta = Object.entries(item.metadata || {});
      if (meta.length) card.append(h("p", { class: "hint" }, meta.map(([k, v]) => `${k}: ${typeof v === "string" ? v : JSON.stringify(v)}`).join(", ")));
      grid.append(card);
    }
    count.textContent = sized(collection.modality, answer.total);
    const last = Math.min(offset + answer.items.length, answer.total);
    const nav = h(
      "nav",
      { class: "pager", "aria-label": "Pages" },
      h("button", { type: "button", disabled: offset === 0, onclick: () => page(Math.max(0, offset - PAGE)) }, "Previous"),
      h("span", { "aria-live": "polite" }, answer.total ? `${offset + 1}–${last} of ${answer.total}` : "empty"),
      h("button", { type: "button", disabled: last >= answer.total, onclick: () => page(offset + PAGE) }, "Next"),
    );
    browse.replaceChildren(nav, grid);
  }
  page(0);
  document.getElementById("collection-title").scrollIntoView({ block: "nearest" });
  showError(banner, "");
}

function searchForm(collection) {
  const id = `search-${collection.name}`;
  const text = h("input", { id: `${id}-text`, type: "search", placeholder: "words to look for" });
  const topK = h("input", { id: `${id}-k`, type: "number", min: "1", max: "100", value: "8" });
  const picker = imagePicker({ label: "or an image", id: `${id}-image` });
  const error = h("p", { class: "error", role: "alert", id: `${id}-error`, hidden: true });
  const results = h("div", { class: "search-results", "aria-live": "polite" });
  const form = h(
    "form",
    { class: "search", "aria-label": `Search ${collection.name}` },
    h("div", { class: "field" }, h("label", { for: text.id }, "Search by text"), text),
    picker.element,
    h("div", { class: "field field-integer" }, h("label", { for: topK.id }, "Matches"), topK),
    h("div", { class: "row" }, h("button", { type: "submit" }, "Search")),
    error,
    results,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    showError(error, "");
    const [file] = picker.files();
    const query = { top_k: Number(topK.value) || 8 };
    try {
      if (text.value.trim()) query.text = text.value;
      else if (file) query.image = await fileBase64(file);
      else throw new Error("type some words or drop an image to search with");
      results.replaceChildren(h("p", { class: "hint" }, "Searching…"));
      const answer = await postJson(`${path(collection.name)}/search`, query);
      results.replaceChildren(
        answer.matches.length ? matchGrid(answer.matches, (m) => thumbnail(collection.name, m.id)) : h("p", { class: "hint" }, "No matches."),
      );
      if (file && !text.value.trim()) picker.clear();
    } catch (err) {
      results.replaceChildren();
      showError(error, messageOf(err));
    }
  });
  return form;
}

function addForm(collection, refresh) {
  const id = `add-${collection.name}`;
  const bar = h("progress", { id: `${id}-progress`, max: "1", value: "0", "aria-label": "Upload progress" });
  const note = h("span", { class: "hint", "aria-live": "polite" });
  const error = h("p", { class: "error", role: "alert", hidden: true });
  const button = h("button", { type: "submit", disabled: true }, "Add images");
  const picker = imagePicker({
    label: "Add images",
    id: `${id}-files`,
    multiple: true,
    onChange: (files) => {
      button.disabled = !files.length;
    },
  });
  const form = h("form", { class: "add", "aria-label": `Add images to ${collection.name}` }, picker.element, h("div", { class: "row" }, button, bar, note), error);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    showError(error, "");
    const files = picker.files();
    bar.max = files.length;
    bar.value = 0;
    button.disabled = true;
    let added = 0;
    try {
      for (let start = 0; start < files.length; start += UPLOAD_BATCH) {
        const batch = files.slice(start, start + UPLOAD_BATCH);
        const items = [];
        for (const file of batch) items.push({ image: await fileBase64(file), metadata: { file: file.name } });
        await postJson(`${path(collection.name)}/items`, { items });
        added += batch.length;
        bar.value = added;
        note.textContent = `${added} / ${files.length}`;
      }
      picker.clear();
      refresh();
    } catch (err) {
      showError(error, `${messageOf(err)} (${added} of ${files.length} added)`);
    } finally {
      button.disabled = !picker.files().length;
    }
  });
  return form;
}
