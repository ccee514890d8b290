// One incident: what it is, acknowledge / resolve / escalate / note, its timeline, its deliveries per
// channel, and the raw payload each alert arrived with.

import { api } from "../api.js";
import { empty, errorBox, h, notice, replace } from "../dom.js";
import { timeEl, when } from "../fmt.js";
import * as live from "../live.js";
import { severityBadge, statusBadge } from "./common.js";

export async function render(main, { params }) {
  const id = params[0];
  let current = null;
  const actionMsg = h("div", { class: "action-msg", "aria-live": "assertive" });

  const load = async () => {
    try {
      current = await api("GET", `/api/v1/incidents/${encodeURIComponent(id)}`);
    } catch (err) {
      replace(main, h("h1", {}, "Incident"), errorBox(err), h("p", {}, h("a", { href: "/incidents" }, "All incidents")));
      return;
    }
    draw(current);
  };

  const act = async (action, button, note) => {
    for (const b of main.querySelectorAll(".actions button")) b.disabled = true;
    replace(actionMsg, notice(`${button.textContent}…`));
    try {
      const body = note ? { note } : {};
      const after = await api("POST", `/api/v1/incidents/${encodeURIComponent(id)}/${action}`, body);
      await load();
      replace(actionMsg, notice(action === "notes" ? "Note added." : `Incident is ${after.status}.`, "ok"));
    } catch (err) {
      draw(current);
      replace(actionMsg, errorBox(err, `Could not ${action === "notes" ? "add the note" : action}`));
    }
  };

  function draw(inc) {
    const note = h("textarea", { id: "note", name: "note", rows: 2, maxlength: 10000 });
    const actions = h("div", { class: "actions", role: "group", "aria-label": "Actions" },
      h("button", { type: "button", class: "primary", disabled: inc.status !== "triggered", onclick: (e) => act("acknowledge", e.currentTarget) }, "Acknowledge"),
      h("button", { type: "button", disabled: inc.status === "resolved", onclick: (e) => act("resolve", e.currentTarget, note.value.trim()) }, "Resolve"),
      h("button", { type: "button", disabled: inc.status === "resolved", onclick: (e) => act("escalate", e.currentTarget) }, "Escalate now"));
    const noteForm = h("form", { class: "note-form" },
      h("label", { for: "note" }, "Note (also the resolution note when you resolve)"), note,
      h("button", { type: "submit" }, "Add note"));
    noteForm.addEventListener("submit", (event) => {
      event.preventDefault();
      act("notes", noteForm.querySelector("button"), note.value.trim());
    });
    replace(main,
      h("p", { class: "crumbs" }, h("a", { href: "/incidents" }, "Incidents"), ` › #${inc.number}`),
      h("h1", {}, `#${inc.number} ${inc.title}`),
      h("p", { class: "meta", id: "incident-status" }, statusBadge(inc.status), " ", severityBadge(inc.severity),
        ` ${inc.team} · route ${inc.route} · ${inc.source} · opened `, timeEl(inc.created_at),
        inc.acknowledged_by ? [" · acknowledged by ", h("strong", {}, inc.acknowledged_by), " ", timeEl(inc.acknowledged_at)] : "",
        inc.resolved_by ? [" · resolved by ", h("strong", {}, inc.resolved_by), " ", timeEl(inc.resolved_at)] : ""),
      inc.details ? h("pre", { class: "details", tabindex: 0, "aria-label": "Details" }, inc.details) : "",
      actions, actionMsg, noteForm,
      h("section", { "aria-labelledby": "tl-title" }, h("h2", { id: "tl-title" }, "Timeline"), timeline(inc.timeline)),
      h("section", { "aria-labelledby": "dl-title" }, h("h2", { id: "dl-title" }, "Deliveries"), deliveries(inc.deliveries)),
      h("section", { "aria-labelledby": "raw-title" }, h("h2", { id: "raw-title" }, "Alerts as received"), rawPayloads(inc.timeline)));
  }

  await load();
  const offs = [
    live.on("incident", (inc) => { if (inc.id === id) load(); }),
    live.on("delivery", (d) => { if (d.incident_id === id) load(); }),
    live.on("reset", load),
  ];
  return () => offs.forEach((off) => off());
}

const LABELS = {
  "incident.opened": (e) => `Opened by a ${e.source} alert${e.severity ? ` (${e.severity})` : ""}`,
  "incident.paged": (e) => `Paged ${[...(e.users || []), ...(e.channels || [])].join(", ") || "nobody"} (step ${e.step + 1}${e.repeat ? `, round ${e.repeat + 1}` : ""})`,
  "incident.alert_attached": (e) => `Alert ${e.status}: ${e.title || e.dedup_key}`,
  "incident.acknowledged": (e) => `Acknowledged by ${e.by}${e.via && e.via !== "api" ? ` via ${e.via}` : ""}`,
  "incident.escalated": (e) => `Escalated to step ${e.step + 1}${e.by ? ` by ${e.by}` : ""}`,
  "incident.resolved": (e) => `Resolved by ${e.by}${e.via === "alert" ? " (the alert resolved)" : ""}${e.reason ? `: ${e.reason}` : ""}`,
  "incident.note_added": (e) => `${e.by}: ${e.note}`,
  "incident.silenced": (e) => `Silenced${e.until ? ` until ${when(e.until)}` : ""}`,
};

function timeline(events) {
  if (!events.length) return empty("No events yet.");
  return h("ol", { class: "timeline" }, events.map((e) => {
    const label = LABELS[e.type] ? LABELS[e.type](e) : e.type;
    return h("li", { class: e.type.replace(".", "-") }, timeEl(e.at), " ", h("span", {}, label),
      e.type === "incident.paged" && (e.undeliverable || []).length
        ? h("ul", { class: "undeliverable" }, e.undeliverable.map((why) => h("li", {}, `Not sent: ${why}`))) : "");
  }));
}

function deliveries(items) {
  if (!items.length) return empty("Nothing delivered yet.");
  const byChannel = new Map();
  for (const d of items) {
    const key = `${d.channel_kind}: ${d.channel}`;
    if (!byChannel.has(key)) byChannel.set(key, []);
    byChannel.get(key).push(d);
  }
  return [...byChannel].map(([channel, rows]) => h("div", { class: "channel" },
    h("h3", {}, channel),
    h("table", {},
      h("thead", {}, h("tr", {}, ["To", "Status", "Attempts", "Provider id", "Error", "Updated"].map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, rows.map((d) => h("tr", {},
        h("td", { "data-label": "To" }, d.target),
        h("td", { "data-label": "Status" }, h("span", { class: `badge delivery-${d.status}` }, d.status)),
        h("td", { "data-label": "Attempts" }, String(d.attempts)),
        h("td", { "data-label": "Provider id" }, d.provider_id || "—"),
        h("td", { "data-label": "Error" }, d.error || "—"),
        h("td", { "data-label": "Updated" }, timeEl(d.updated_at))))))));
}

function rawPayloads(events) {
  const ids = [...new Set(events.filter((e) => e.alert_id).map((e) => e.alert_id))];
  if (!ids.length) return empty("No alerts (a manual incident).");
  return ids.map((alertId, i) => {
    const body = h("div", {}, h("p", { class: "muted" }, "Loading…"));
    const box = h("details", { class: "raw" }, h("summary", {}, `Alert ${i + 1} (${alertId})`), body);
    let loaded = false;
    box.addEventListener("toggle", async () => {
      if (!box.open || loaded) return;
      loaded = true;
      try {
        const alert = await api("GET", `/api/v1/alerts/${encodeURIComponent(alertId)}`);
        replace(body,
          alert.links && alert.links.length ? h("ul", {}, alert.links.filter((l) => /^https?:/i.test(l.href)).map((l) => h("li", {}, h("a", { href: l.href, rel: "noopener noreferrer", target: "_blank" }, l.text || l.href)))) : "",
          h("pre", { tabindex: 0 }, JSON.stringify(alert.raw, null, 2)));
      } catch (err) {
        loaded = false;
        replace(body, errorBox(err));
      }
    });
    return box;
  });
}
