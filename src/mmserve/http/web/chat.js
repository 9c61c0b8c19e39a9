// The Agents section: a chat with an agent, images attached, tool calls shown inline.

import { fileBase64, getJson, postJson } from "./api.js";
import { h, imagePicker, messageOf, showError } from "./dom.js";
import { base64Image, renderTrace } from "./render.js";

export async function loadAgents(banner) {
  const view = document.getElementById("agent-view");
  let agents;
  try {
    agents = (await getJson("/v1/agents")).agents;
  } catch (err) {
    showError(banner, `Cannot list the agents: ${messageOf(err)}`);
    return;
  }
  if (!agents.length) {
    view.replaceChildren(h("p", { class: "hint" }, "This server has no agents (add `agents:` to its config)."));
    return;
  }
  const select = h("select", { id: "agent-select" }, agents.map((a) => h("option", { value: a.name }, a.name)));
  const about = h("p", { class: "desc" });
  const log = h("ol", { class: "chat", id: "chat-log", "aria-live": "polite", "aria-label": "Conversation" });
  const text = h("textarea", { id: "chat-text", rows: "2", required: true });
  const picker = imagePicker({ label: "Attach an image", id: "chat-image" });
  const error = h("p", { class: "error", role: "alert", id: "chat-error", hidden: true });
  const send = h("button", { type: "submit" }, "Send");
  const form = h(
    "form",
    { id: "chat-form", "aria-label": "Message" },
    h("div", { class: "field" }, h("label", { for: text.id }, "Message"), text),
    picker.element,
    h("div", { class: "row" }, send, h("button", { type: "button", class: "quiet", onclick: () => reset() }, "New conversation")),
    error,
  );
  view.replaceChildren(h("div", { class: "field" }, h("label", { for: select.id }, "Agent"), select), about, log, form);

  let messages = [];
  let images = [];
  function describe() {
    const agent = agents.find((a) => a.name === select.value);
    about.textContent = `${agent.description} Tools: ${agent.tools.join(", ")}.`;
  }
  function reset() {
    messages = [];
    images = [];
    log.replaceChildren();
    showError(error, "");
  }
  select.addEventListener("change", () => {
    describe();
    reset();
  });
  describe();
  text.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) form.requestSubmit();
  });

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    showError(error, "");
    const content = text.value.trim();
    if (!content) {
      showError(error, "write a message first");
      return;
    }
    const [file] = picker.files();
    let attached = null;
    try {
      if (file) attached = await fileBase64(file);
    } catch (err) {
      showError(error, messageOf(err));
      return;
    }
    const nextImages = attached ? [...images, attached] : images;
    const nextMessages = [...messages, { role: "user", content }];
    const mine = h("li", { class: "msg user" }, h("p", {}, content));
    if (attached) mine.append(base64Image(attached, `image_${nextImages.length}`));
    log.append(mine);
    const waiting = h("li", { class: "msg pending" }, "…");
    log.append(waiting);
    send.disabled = true;
    try {
      const answer = await postJson(`/v1/agents/${encodeURIComponent(select.value)}/run`, { messages: nextMessages, images: nextImages });
      messages = [...nextMessages, { role: "assistant", content: answer.message.content || "" }];
      images = nextImages;
      text.value = "";
      picker.clear();
      waiting.replaceWith(...answerItems(answer));
    } catch (err) {
      waiting.remove();
      mine.remove();
      showError(error, messageOf(err));
    } finally {
      send.disabled = false;
    }
  });
}

function toolResult(value, made) {
  if (value === null || value === undefined) return null;
  if (typeof value === "string" && made[value]) return base64Image(made[value], value);
  if (typeof value === "string") return h("p", {}, value);
  if (Array.isArray(value)) return h("ul", { class: "plain" }, value.map((v) => h("li", {}, toolResult(v, made))));
  if (typeof value === "object") {
    return h("dl", { class: "object" }, Object.entries(value).flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, toolResult(v, made))]));
  }
  return h("p", {}, String(value));
}

function answerItems(answer) {
  const made = answer.images || {};
  const items = answer.trace.map((call) =>
    h(
      "li",
      { class: `msg tool status-${call.status}` },
      h("details", {}, h("summary", {}, `tool ${call.tool} · ${call.status} · ${call.wall_ms.toFixed(0)} ms`),
        h("p", { class: "hint" }, `arguments: ${JSON.stringify(call.arguments)}`),
        renderTrace(call.trace || [])),
      call.error ? h("p", { class: "error" }, call.error) : toolResult(call.result, made),
    ),
  );
  const reply = h("li", { class: "msg assistant" }, h("p", {}, answer.message.content || "(no answer)"));
  if (answer.status === "max_turns") reply.append(h("p", { class: "hint" }, "The agent ran out of turns."));
  items.push(reply);
  return items;
}
