// The page's entry point: tabs, the API key dialog, and loading each section.

import { currentKey, onKeyNeeded, setKey } from "./api.js";
import { loadAgents } from "./chat.js";
import { loadCollections } from "./collections.js";
import { showError } from "./dom.js";
import { loadWorkflows } from "./workflows.js";

const banner = document.getElementById("banner");
const loaders = { workflows: loadWorkflows, collections: loadCollections, agents: loadAgents };
const loaded = new Set();

function select(name, focus) {
  for (const tab of document.querySelectorAll('[role="tab"]')) {
    const on = tab.id === `tab-${name}`;
    tab.setAttribute("aria-selected", String(on));
    tab.tabIndex = on ? 0 : -1;
    document.getElementById(tab.getAttribute("aria-controls")).hidden = !on;
    if (on && focus) tab.focus();
  }
  showError(banner, "");
  if (name === "collections" || !loaded.has(name)) {
    loaded.add(name);
    loaders[name](banner);
  }
}

const names = Object.keys(loaders);
for (const tab of document.querySelectorAll('[role="tab"]')) {
  const name = tab.id.slice(4);
  tab.addEventListener("click", () => select(name, false));
  tab.addEventListener("keydown", (event) => {
    const step = { ArrowRight: 1, ArrowLeft: -1 }[event.key];
    if (!step) return;
    event.preventDefault();
    select(names[(names.indexOf(name) + step + names.length) % names.length], true);
  });
}

// The key: asked once (when the API first answers 401), kept in this tab's session storage.
const dialog = document.getElementById("key-dialog");
const keyInput = document.getElementById("key-input");
const keyError = document.getElementById("key-error");
let pending = null;

function ask(reason) {
  if (pending) return pending;
  pending = new Promise((resolve) => {
    keyInput.value = currentKey();
    showError(keyError, reason && currentKey() ? reason : "");
    const done = (key) => {
      dialog.close();
      pending = null;
      resolve(key);
    };
    document.getElementById("key-form").onsubmit = (event) => {
      event.preventDefault();
      const key = keyInput.value.trim();
      if (!key) return;
      setKey(key);
      done(key);
    };
    document.getElementById("key-cancel").onclick = () => done(null);
    dialog.oncancel = () => done(null);
    dialog.showModal();
    keyInput.focus();
  });
  return pending;
}

onKeyNeeded(ask);
document.getElementById("key-button").addEventListener("click", async () => {
  if (await ask("")) {
    loaded.clear();
    const current = document.querySelector('[role="tab"][aria-selected="true"]').id.slice(4);
    select(current, false);
  }
});

window.addEventListener("unhandledrejection", (event) => {
  event.preventDefault();
  const reason = event.reason && event.reason.message ? event.reason.message : "something went wrong";
  showError(banner, reason);
});

select("workflows", false);
