// A tiny element builder. Text always goes in as text (never as HTML), so data from alerts cannot inject markup.

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else if (key === "class") el.className = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (value === true) el.setAttribute(key, "");
    else el.setAttribute(key, String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

// A message box for errors and notices; role=alert makes screen readers say it at once.
export function errorBox(err, prefix = "") {
  const text = err && err.message ? err.message : String(err);
  return h("p", { class: "error", role: "alert" }, prefix ? `${prefix}: ${text}` : text);
}

export function notice(text, kind = "info") {
  return h("p", { class: kind, role: kind === "error" ? "alert" : "status" }, text);
}

export function empty(text) {
  return h("p", { class: "empty" }, text);
}

// Put `items` (objects with an `id`) into `list` in order, building an element only for an item that is new
// or changed and leaving every other node where it is, so a live update does not take the focus away.
export function reconcile(list, items, build, cache) {
  const wanted = items.map((item) => {
    const key = JSON.stringify(item);
    const had = cache.get(item.id);
    if (had && had.key === key) return had.el;
    if (had) had.el.remove();
    const el = build(item);
    cache.set(item.id, { key, el });
    return el;
  });
  const keep = new Set(wanted);
  for (const [id, { el }] of cache) if (!keep.has(el)) { el.remove(); cache.delete(id); }
  wanted.forEach((el, i) => {
    if (list.children[i] !== el) list.insertBefore(el, list.children[i] || null);
  });
}
