// The Jobs section: the server's jobs, newest first, polled while any is queued or running; a
// job's outputs (rendered as a run's), its error, and Cancel for a queued or running one.

import { call, deleteJson, getJson } from "./api.js";
import { h, messageOf, showError } from "./dom.js";
import { renderOutputs, renderTrace } from "./render.js";

const POLL_MS = 1000;
const PAGE = 50;
const MAX_QUEUED = 500;
const ACTIVE = new Set(["queued", "running"]);

const state = {
  banner: null,
  selected: null, // the id of the job shown below the list
  shown: null, // {id, status, signature} of the job view, so a poll re-renders only on change
  listed: "", // the signature of the list
  focus: false, // move the focus to the job once shown ("Run as a job", Cancel)
  notice: null, // {id, message}: why a cancel was refused, shown with the job
  seq: 0, // the latest refresh: an older one that answers late is dropped
  timer: null,
  schemas: null, // the workflows' output schemas, by name
};

let probe = null;

/** Whether the server has the job API: GET /v1/jobs answers (404 or 501: it has none). */
export function jobsAvailable() {
  if (!probe) {
    probe = call(`/v1/jobs?limit=1`).then(
      () => true,
      (err) => {
        if (err.status !== 404 && err.status !== 501) probe = null; // a refused key: ask again later
        return false;
      },
    );
  }
  return probe;
}

/** Ask again whether the server has jobs (another key may see them). */
export function forgetJobsProbe() {
  probe = null;
}

/** Show this job when the Jobs tab next loads (after it was submitted from a form). */
export function openJob(id) {
  state.selected = id;
  state.shown = null;
  state.notice = null;
  state.focus = true;
}

function panelShown() {
  return !document.getElementById("panel-jobs").hidden && document.visibilityState === "visible";
}

function stopPolling() {
  clearTimeout(state.timer);
  state.timer = null;
}

export async function loadJobs(banner) {
  state.banner = banner;
  await refresh();
}

document.getElementById("jobs-refresh").addEventListener("click", () => refresh());
document.addEventListener("visibilitychange", () => {
  if (!panelShown()) stopPolling();
  else if (!state.timer) refresh();
});

async function outputSchemas() {
  if (!state.schemas) {
    try {
      const { workflows } = await getJson("/v1/workflows");
      state.schemas = Object.fromEntries(workflows.map((w) => [w.name, w.outputs]));
    } catch {
      return {}; // outputs still render, images recognised by their bytes
    }
  }
  return state.schemas;
}

/** The queue positions of the queued jobs (0 = next), as the server counts them. */
function positions(queued) {
  const order = [...queued].sort((a, b) => a.created_at - b.created_at || (a.id < b.id ? -1 : 1));
  return new Map(order.map((job, n) => [job.id, n]));
}

async function refresh() {
  stopPolling();
  if (document.getElementById("panel-jobs").hidden) return;
  const seq = ++state.seq;
  let page;
  let queued = [];
  try {
    page = await getJson(`/v1/jobs?limit=${PAGE}`);
    if (page.jobs.some((job) => job.status === "queued")) {
      queued = (await getJson(`/v1/jobs?status=queued&limit=${MAX_QUEUED}`)).jobs;
    }
  } catch (err) {
    if (seq === state.seq) showError(state.banner, `Cannot list the jobs: ${messageOf(err)}`);
    return; // no more polling: Refresh, or the tab again, tries again
  }
  if (seq !== state.seq) return;
  if (state.banner && state.banner.textContent.startsWith("Cannot list the jobs")) showError(state.banner, "");
  const places = positions(queued);
  renderList(page, places);
  let active = page.jobs.some((job) => ACTIVE.has(job.status));
  if (state.selected) {
    const listed = page.jobs.find((job) => job.id === state.selected);
    const shown = state.shown;
    if (!shown || ACTIVE.has(shown.status) || (listed && listed.status !== shown.status)) {
      let job;
      try {
        job = await getJson(`/v1/jobs/${encodeURIComponent(state.selected)}`);
      } catch (err) {
        if (seq === state.seq) showMissing(state.selected, err);
        return;
      }
      if (seq !== state.seq) return;
      await showJob(job);
      if (seq !== state.seq) return;
      active = active || ACTIVE.has(job.status);
      if (listed && listed.status !== job.status) {
        // it changed between the two reads: the list says what the job view says
        page.jobs = page.jobs.map((one) => (one.id === job.id ? { ...one, ...job, outputs: null, trace: null } : one));
        places.delete(job.id);
        renderList(page, places);
      }
    }
  }
  if (active && panelShown()) state.timer = setTimeout(refresh, POLL_MS);
}

function when(seconds) {
  if (seconds === null || seconds === undefined) return null;
  const date = new Date(seconds * 1000);
  const today = date.toDateString() === new Date().toDateString();
  return h("time", { datetime: date.toISOString() }, today ? date.toLocaleTimeString() : date.toLocaleString());
}

function duration(job) {
  if (!job.started_at || !job.finished_at) return "";
  const s = job.finished_at - job.started_at;
  return s < 60 ? `${s.toFixed(1)} s` : `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
}

function target(job) {
  return job.workflow || job.agent || job.kind;
}

function queuePlace(position) {
  if (position === null || position === undefined) return "waiting";
  return position === 0 ? "next in the queue" : `${position} ahead in the queue`;
}

function statusText(job) {
  if (job.status === "running" && job.cancel_requested) return "running (cancelling)";
  return job.status;
}

/** The progress of a job as words: steps for a running one, the place of a queued one. */
function progressText(job, position) {
  if (job.status === "running") return `${job.steps_done}/${job.steps_total} steps`;
  if (job.status === "queued") return queuePlace(position);
  if (job.status === "succeeded") return duration(job);
  return "";
}

function badge(job) {
  return h("span", { class: "job-status", "data-status": job.status }, statusText(job));
}

function renderList(page, places) {
  const body = document.querySelector("#job-table tbody");
  const rows = page.jobs.map((job) => [job.id, statusText(job), progressText(job, places.get(job.id))]);
  const signature = JSON.stringify([rows, state.selected, page.next_cursor !== null]);
  if (signature === state.listed) return;
  state.listed = signature;
  const focused = document.activeElement && document.activeElement.closest && document.activeElement.closest("#job-table [data-job]");
  body.replaceChildren();
  if (!page.jobs.length) {
    body.append(h("tr", {}, h("td", { colspan: "4", class: "hint" }, "No jobs yet: “Run as a job” on a workflow queues one.")));
  }
  for (const job of page.jobs) {
    const current = job.id === state.selected;
    const position = places.get(job.id);
    const progress = h("td", { class: "num job-progress" }, progressText(job, position));
    if (job.status === "running" && job.steps_total) {
      progress.prepend(h("progress", { max: String(job.steps_total), value: String(job.steps_done), "aria-hidden": "true" }));
    }
    body.append(
      h(
        "tr",
        { "data-job": job.id, "data-status": job.status, class: current ? "current" : null },
        h(
          "td",
          {},
          h(
            "button",
            { type: "button", class: "link", "aria-current": current ? "true" : null, title: job.id, onclick: () => choose(job.id) },
            target(job),
            " ",
            h("span", { class: "job-id" }, job.id.slice(0, 8)),
          ),
        ),
        h("td", {}, badge(job)),
        h("td", { class: "job-created" }, when(job.created_at)),
        progress,
      ),
    );
  }
  document.getElementById("jobs-more").hidden = page.next_cursor === null;
  if (focused) {
    const again = body.querySelector(`[data-job="${CSS.escape(focused.dataset.job)}"] button`);
    if (again) again.focus();
  }
}

function choose(id) {
  state.selected = id;
  state.shown = null;
  state.listed = "";
  state.notice = null;
  refresh().then(() => {
    // on a phone the job is below the list: bring it up
    const view = document.getElementById("job-view");
    if (!view.hidden && view.getBoundingClientRect().top > window.innerHeight * 0.6) view.scrollIntoView({ block: "start" });
  });
}

function announce(text) {
  document.getElementById("job-announce").textContent = text;
}

function showMissing(id, err) {
  const view = document.getElementById("job-view");
  view.hidden = false;
  view.replaceChildren(h("h3", { id: "job-title" }, `Job ${id}`), h("p", { class: "error", role: "alert" }, messageOf(err)));
  state.shown = null;
}

function meta(job) {
  const rows = [
    ["id", job.id],
    ["created", when(job.created_at)],
    ["started", when(job.started_at)],
    ["finished", when(job.finished_at)],
    ["attempts", job.attempts ? String(job.attempts) : null],
    ["caller", job.caller],
  ].filter(([, value]) => value);
  return h("dl", { class: "meta" }, rows.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
}

function body(job, schema) {
  if (job.status === "succeeded") {
    return [h("h4", {}, "Outputs"), renderOutputs(job.outputs, schema), h("h4", {}, "Trace"), renderTrace(job.trace || [])];
  }
  if (job.status === "failed") {
    const error = job.error || {};
    return [
      h("p", { class: "error", id: "job-error" }, error.message || "the job failed", error.code ? h("span", { class: "hint" }, ` (${error.code})`) : null),
      error.trace && error.trace.length ? [h("h4", {}, "Trace"), renderTrace(error.trace)] : null,
    ];
  }
  if (job.status === "running") {
    return h(
      "p",
      { class: "row" },
      h("progress", { id: "job-progress", max: String(job.steps_total || 1), value: String(job.steps_done), "aria-label": "Steps done" }),
      h("span", {}, `${job.steps_done} of ${job.steps_total} steps done`),
    );
  }
  if (job.status === "queued") return h("p", { class: "hint" }, `Waiting to run: ${queuePlace(job.position)}.`);
  if (job.status === "cancelled") return h("p", { class: "hint" }, "Cancelled: it did not finish.");
  if (job.status === "expired") return h("p", { class: "hint" }, "Expired: its outputs are no longer kept.");
  return null;
}

async function showJob(job) {
  const signature = [job.status, job.steps_done, job.position, job.cancel_requested].join(" ");
  const before = state.shown;
  if (before && before.id === job.id && before.signature === signature) return;
  const schemas = job.status === "succeeded" ? await outputSchemas() : {};
  state.shown = { id: job.id, status: job.status, signature };
  const view = document.getElementById("job-view");
  const error = h("p", { class: "error", role: "alert", id: "job-cancel-error", hidden: true });
  if (state.notice && state.notice.id === job.id) showError(error, state.notice.message);
  const title = h("h3", { id: "job-title", tabindex: "-1" }, target(job), " ", h("span", { class: "job-id" }, `job ${job.id.slice(0, 8)}`));
  const cancel = ACTIVE.has(job.status)
    ? h(
        "button",
        { type: "button", id: "job-cancel", class: "quiet", disabled: job.cancel_requested, onclick: () => cancelJob(job) },
        job.cancel_requested ? "Cancelling…" : "Cancel",
      )
    : null;
  const hadFocus = view.contains(document.activeElement); // a poll must not drop it
  view.hidden = false;
  view.dataset.job = job.id;
  view.replaceChildren(
    title,
    h("div", { class: "row" }, h("span", { id: "job-status" }, badge(job)), cancel),
    error,
    meta(job),
    h("div", { class: "job-body" }, body(job, schemas[target(job)])),
  );
  if (before && before.id === job.id && before.status !== job.status) {
    announce(`Job ${target(job)} ${job.id.slice(0, 8)}: ${statusText(job)}`);
  }
  if (state.focus) {
    state.focus = false;
    title.focus();
    title.scrollIntoView({ block: "nearest" });
  } else if (hadFocus) {
    (view.querySelector("#job-cancel:not([disabled])") || title).focus();
  }
}

async function cancelJob(job) {
  stopPolling();
  state.seq += 1; // a refresh in flight would show the job as it was before
  state.notice = null;
  const button = document.getElementById("job-cancel");
  if (button) button.disabled = true;
  state.focus = true; // the Cancel button goes: keep the focus on the job
  try {
    await showJob(await deleteJson(`/v1/jobs/${encodeURIComponent(job.id)}`));
  } catch (err) {
    // e.g. 409: it finished meanwhile; the refresh below shows how
    state.notice = { id: job.id, message: messageOf(err) };
    state.shown = null;
  }
  state.listed = "";
  await refresh();
}
