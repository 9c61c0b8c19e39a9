// The Workflows section: the list, a form per workflow, live progress, outputs and trace.

import { getJson, runStreamed, submitJob } from "./api.js";
import { h, messageOf, showError } from "./dom.js";
import { schemaForm } from "./forms.js";
import { jobsAvailable } from "./jobs.js";
import { renderOutputs, renderTrace } from "./render.js";

let workflows = [];

export async function loadWorkflows(banner) {
  const list = document.getElementById("workflow-list");
  try {
    workflows = (await getJson("/v1/workflows")).workflows;
  } catch (err) {
    showError(banner, `Cannot list the workflows: ${messageOf(err)}`);
    return;
  }
  list.replaceChildren();
  for (const workflow of workflows) {
    const button = h(
      "button",
      { type: "button", class: "pick", "data-workflow": workflow.name, onclick: () => choose(workflow.name) },
      h("strong", {}, workflow.name),
      h("span", { class: "desc" }, workflow.description),
    );
    list.append(h("li", {}, button));
  }
  const wanted = new URLSearchParams(location.hash.slice(1)).get("workflow");
  if (wanted && workflows.some((w) => w.name === wanted)) choose(wanted);
}

function choose(name) {
  const workflow = workflows.find((w) => w.name === name);
  for (const button of document.querySelectorAll("#workflow-list .pick")) {
    button.setAttribute("aria-current", button.dataset.workflow === name ? "true" : "false");
  }
  const view = document.getElementById("workflow-view");
  const formError = h("p", { class: "error", role: "alert", id: "run-error", hidden: true });
  const fieldset = h("div", { class: "fields" });
  const runButton = h("button", { type: "submit", id: "run-button" }, "Run");
  // the same inputs, queued as a job (shown in the Jobs tab); only where the server has jobs
  const jobButton = h("button", { type: "submit", id: "job-button", class: "quiet", hidden: true }, "Run as a job");
  jobsAvailable().then((available) => {
    jobButton.hidden = !available;
  });
  const form = h(
    "form",
    { id: "run-form", "aria-labelledby": "workflow-title", novalidate: true },
    fieldset,
    h("div", { class: "row" }, runButton, jobButton),
    formError,
  );
  const progress = h("ol", { class: "progress", id: "run-progress", "aria-live": "polite", "aria-label": "Progress" });
  const result = h("div", { id: "run-result", "aria-live": "polite" });
  view.replaceChildren(
    ...[
    h("h3", { id: "workflow-title" }, workflow.name),
    h("p", { class: "desc" }, workflow.description),
    workflow.side_effects.length ? h("p", { class: "hint" }, `Writes data (steps: ${workflow.side_effects.join(", ")}).`) : null,
    h("div", { class: "run-grid" }, form, h("div", { class: "run-out" }, progress, result)),
    ].filter(Boolean),
  );
  const fields = schemaForm(workflow.inputs, fieldset, `in-${workflow.name}`);
  // on a phone the form is below the long list: bring it up
  if (view.getBoundingClientRect().top > window.innerHeight * 0.6) view.scrollIntoView({ block: "start" });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const asJob = event.submitter === jobButton;
    fields.clearErrors();
    showError(formError, "");
    progress.replaceChildren();
    result.replaceChildren(h("p", { class: "hint" }, asJob ? "Queuing a job…" : "Running…"));
    runButton.disabled = true;
    jobButton.disabled = true;
    try {
      const inputs = await fields.values();
      if (asJob) {
        const job = await submitJob(workflow.name, inputs);
        result.replaceChildren(queued(job.id));
        document.dispatchEvent(new CustomEvent("mmserve:open-job", { detail: { id: job.id } }));
        return;
      }
      const body = await runStreamed(workflow.name, inputs, (kind, data) => onEvent(progress, kind, data));
      result.replaceChildren(
        h("h4", {}, "Outputs"),
        renderOutputs(body.outputs, workflow.outputs),
        h("h4", {}, "Trace"),
        renderTrace(body.trace || []),
      );
    } catch (err) {
      result.replaceChildren();
      const message = messageOf(err);
      if (!fields.fieldError(err.field, message)) showError(formError, message);
    } finally {
      runButton.disabled = false;
      jobButton.disabled = false;
    }
  });
}

/** What the form shows after "Run as a job": the job's id and a way back to it. */
function queued(id) {
  const open = () => document.dispatchEvent(new CustomEvent("mmserve:open-job", { detail: { id } }));
  return h(
    "p",
    { class: "hint" },
    "Queued as job ",
    h("button", { type: "button", class: "link", onclick: open }, id.slice(0, 8)),
    " (see the Jobs tab).",
  );
}

function stepRow(progress, step) {
  let row = progress.querySelector(`[data-step="${CSS.escape(step)}"]`);
  if (!row) {
    row = h("li", { "data-step": step }, h("span", { class: "step-name" }, step), h("span", { class: "step-status" }, ""));
    progress.append(row);
  }
  return row;
}

function onEvent(progress, kind, data) {
  if (!data.step) return;
  const row = stepRow(progress, data.step);
  const status = row.querySelector(".step-status");
  if (kind === "step_started") {
    row.className = "status-running";
    status.textContent = "running…";
  } else if (kind === "item_progress") {
    status.textContent = `${data.done} / ${data.total} items`;
  } else if (kind === "step_finished") {
    const entry = data.entry || {};
    row.className = `status-${entry.status}`;
    status.textContent = `${entry.status} · ${(entry.wall_ms || 0).toFixed(1)} ms`;
  }
}
