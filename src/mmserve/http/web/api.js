// Calls to the mmserve HTTP API: the bearer key, the error shape, streamed runs.

const KEY_STORE = "mmserve.key";

/** An error answer of the API: {error: {code, message, request_id}} and its status. */
export class ApiError extends Error {
  constructor(status, code, message, requestId) {
    super(message);
    this.status = status;
    this.code = code;
    this.requestId = requestId;
  }
  /** The input the message names ("input 'image': ...", "items[0].text: ..."), if any. */
  get field() {
    const quoted = /input '([^']+)'/.exec(this.message);
    if (quoted) return quoted[1];
    const located = /^(?:body\.)?(?:inputs\.)?([A-Za-z_][\w]*)/.exec(this.message);
    return located ? located[1] : null;
  }
}

let askKey = null;

/** Register the function that asks the person for a key (returns a promise of it or null). */
export function onKeyNeeded(ask) {
  askKey = ask;
}

export function currentKey() {
  return sessionStorage.getItem(KEY_STORE) || "";
}

export function setKey(key) {
  if (key) sessionStorage.setItem(KEY_STORE, key);
  else sessionStorage.removeItem(KEY_STORE);
}

function headers(extra) {
  const all = { ...(extra || {}) };
  const key = currentKey();
  if (key) all.Authorization = `Bearer ${key}`;
  return all;
}

async function errorOf(response) {
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  const error = body && body.error;
  if (error && typeof error.message === "string") {
    return new ApiError(response.status, error.code, error.message, error.request_id);
  }
  return new ApiError(response.status, "http_error", `the server answered ${response.status}`);
}

/** fetch() with the key; a 401 asks for the key once and tries again. */
export async function call(path, options = {}) {
  for (let attempt = 0; ; attempt++) {
    let response;
    try {
      response = await fetch(path, { ...options, headers: headers(options.headers) });
    } catch (err) {
      throw new ApiError(0, "network", `cannot reach the server (${err.message})`);
    }
    if (response.status === 401 && attempt === 0 && askKey) {
      const key = await askKey((await errorOf(response.clone())).message);
      if (key) continue;
    }
    if (!response.ok) throw await errorOf(response);
    return response;
  }
}

export async function getJson(path) {
  return (await call(path)).json();
}

export async function postJson(path, body, extraHeaders) {
  const response = await call(path, {
    method: "POST",
    headers: { "Content-Type": "application/json", ...(extraHeaders || {}) },
    body: JSON.stringify(body),
  });
  return response.json();
}

/** DELETE with the key; the answer's JSON. */
export async function deleteJson(path) {
  return (await call(path, { method: "DELETE" })).json();
}

/**
 * Queue a run of the workflow as a job: the same body as /run ({inputs}); resolves with the
 * 202 answer {id, status, url}, rejects with the ApiError /run would give for bad inputs.
 */
export async function submitJob(name, inputs) {
  return postJson(`/v1/workflows/${encodeURIComponent(name)}/jobs`, { inputs });
}

/** An object URL for an image the API serves (fetched with the key). */
export async function imageUrl(path) {
  const blob = await (await call(path)).blob();
  return URL.createObjectURL(blob);
}

/**
 * A streamed workflow run: onEvent(name, data) for each Server-Sent Event; resolves with the
 * result body, rejects with an ApiError (a refusal, or the stream's `error` event).
 */
export async function runStreamed(name, inputs, onEvent) {
  const response = await call(`/v1/workflows/${encodeURIComponent(name)}/run`, {
    method: "POST",
    headers: { "Content-Type": "application/json", Accept: "text/event-stream" },
    body: JSON.stringify({ inputs }),
  });
  if (!(response.headers.get("content-type") || "").startsWith("text/event-stream")) {
    return response.json();
  }
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value;
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const frame = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      let event = "message";
      const data = [];
      for (const line of frame.split("\n")) {
        if (line.startsWith("event:")) event = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).trim());
      }
      if (!data.length) continue;
      const parsed = JSON.parse(data.join("\n"));
      if (event === "result") return parsed;
      if (event === "error") {
        const e = parsed.error || {};
        throw new ApiError(e.status || 500, e.code, e.message || "the run failed", e.request_id);
      }
      onEvent(event, parsed);
    }
  }
  throw new ApiError(0, "stream_ended", "the server ended the stream without a result");
}

/** The file's bytes as base64 text (what the API takes for images). */
export function fileBase64(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(String(reader.result).split(",", 2)[1] || "");
    reader.onerror = () => reject(new Error(`cannot read ${file.name}`));
    reader.readAsDataURL(file);
  });
}
