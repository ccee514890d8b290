// The server-sent events of /api/v1/stream, read with fetch (EventSource cannot send a bearer token).
// It reconnects by itself; after a reconnect it emits "reset", because changes in between are not replayed.

import { authHeaders } from "./api.js";

const handlers = new Map();   // event name -> Set of functions
let controller = null;
let statusEl = null;

export function on(event, fn) {
  if (!handlers.has(event)) handlers.set(event, new Set());
  handlers.get(event).add(fn);
  return () => handlers.get(event).delete(fn);
}

function emit(event, data) {
  for (const fn of handlers.get(event) || []) {
    try { fn(data); } catch (err) { console.error(err); }
  }
}

function setStatus(state, text) {
  if (!statusEl) return;
  statusEl.dataset.state = state;
  statusEl.textContent = text;
}

export function start(el) {
  statusEl = el;
  stop();
  controller = new AbortController();
  run(controller.signal);
}

export function stop() {
  if (controller) controller.abort();
  controller = null;
  setStatus("off", "");
}

async function run(signal) {
  let delay = 1000;
  let first = true;
  while (!signal.aborted) {
    try {
      const response = await fetch("/api/v1/stream", {
        headers: { Accept: "text/event-stream", ...authHeaders() }, credentials: "same-origin", signal,
      });
      if (response.status === 401) { setStatus("down", "Not live: signed out"); return; }
      if (!response.ok || !response.body) throw new Error(`stream answered ${response.status}`);
      setStatus("up", "Live");
      if (!first) emit("reset", null);
      first = false;
      delay = 1000;
      await read(response.body, signal);
    } catch (err) {
      if (signal.aborted) return;
      console.warn("live updates:", err.message);
    }
    setStatus("down", "Reconnecting…");
    await new Promise((resolve) => setTimeout(resolve, delay));
    delay = Math.min(delay * 2, 15000);
  }
}

async function read(body, signal) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  while (!signal.aborted) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value.replace(/\r\n?/g, "\n");
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      dispatch(buffer.slice(0, cut));
      buffer = buffer.slice(cut + 2);
    }
  }
}

function dispatch(block) {
  let event = "message";
  const data = [];
  for (const line of block.split("\n")) {
    if (!line || line.startsWith(":")) continue;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
    if (field === "event") event = value;
    else if (field === "data") data.push(value);
  }
  if (!data.length) return;
  try { emit(event, JSON.parse(data.join("\n"))); } catch { /* not JSON: ignore */ }
}
