// The page's entry point: tabs, the API key dialog, and loading each section.

import { currentKey, onKeyNeeded, setKey } from "./api.js";
import { loadAgents } from "./chat.js";
import { loadCollections } from "./collections.js";
import { showError } from "./dom.js";
import { forgetJobsProbe, jobsAvailable, loadJobs, openJob } from "./jobs.js";
import { loadWorkflows } from "./workflows.js";

const banner = document.getElementById("banner");
const loaders = { workflows: loadWorkflows, collections: loadCollections, agents: loadAgents, jobs: loadJobs };
// sections read afresh each time they are shown
const live = new Set(["collections", "jobs"]);
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
  if (live.has(name) || !loaded.has(name)) {
    loaded.add(name);
    loaders[name](banner);
  }
}

for (const tab of document.querySelectorAll('[role="tab"]')) {
  const name = tab.id.slice(4);
  tab.addEventListener("click", () => select(name, false));
  tab.addEventListener("keydown", (event) => {
    const names = [...document.querySelectorAll('[role="tab"]:not([hidden])')].map((t) => t.id.slice(4));
    const here = names.indexOf(name);
    const next = { ArrowRight: here + 1, ArrowLeft: here - 1, Home: 0, End: names.length - 1 }[event.key];
    if (next === undefined) return;
    event.preventDefault();
    select(names[(next + names.length) % names.length], true);
  });
}

// The Jobs tab, only on a server with the job API; a form's "Run as a job" opens its job there.
function showJobsTab() {
  jobsAvailable().then((available) => {
    const tab = document.getElementById("tab-jobs");
    tab.hidden = !available;
    if (!available && tab.getAttribute("aria-selected") === "true") select("workflows", false);
  });
}

document.addEventListener("mmserve:open-job", (event) => {
  openJob(event.detail.id);
  document.getElementById("tab-jobs").hidden = false;
  select("jobs", false);
});

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
    forgetJobsProbe();
    showJobsTab();
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
showJobsTab();
