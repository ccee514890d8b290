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
  // The parts that stay put while the incident changes underneath: the note being typed, the focus and
  // the opened raw payloads survive every live update.
  const actionMsg = h("div", { class: "action-msg", "aria-live": "assertive" });
  const head = h("div", {});
  const note = h("textarea", { id: "note", name: "note", rows: 2, maxlength: 10000 });
  const ack = h("button", { type: "button", class: "primary", onclick: () => act("acknowledge", ack) }, "Acknowledge");
  const resolve = h("button", { type: "button", onclick: () => act("resolve", resolve, note.value.trim()) }, "Resolve");
  // Escalating wakes the next person: one more question first, since a mis-tap at 3 a.m. is easy.
  const escalate = h("button", { type: "button", onclick: () => {
    if (confirm("Page the next step of the escalation policy now?")) act("escalate", escalate);
  } }, "Escalate now");
  const noteButton = h("button", { type: "submit" }, "Add note");
  const noteForm = h("form", { class: "note-form" },
    h("label", { for: "note" }, "Note (also the resolution note when you resolve)"), note, noteButton);
  noteForm.addEventListener("submit", (event) => {
    event.preventDefault();
    act("notes", noteButton, note.value.trim());
  });
  const timelineBox = h("div", {});
  const deliveriesBox = h("div", {});
  const rawBox = h("div", {});
  let rawIds = "";
  let shown = false;

  const load = async () => {
    try {
      current = await api("GET", `/api/v1/incidents/${encodeURIComponent(id)}`);
    } catch (err) {
      shown = false;
      replace(main, h("h1", {}, "Incident"), errorBox(err), h("p", {}, h("a", { href: "/incidents" }, "All incidents")));
      return;
    }
    draw(current);
  };

  const act = async (action, button, text) => {
    for (const b of [ack, resolve, escalate, noteButton]) b.disabled = true;
    replace(actionMsg, notice(`${button.textContent}…`));
    try {
      const after = await api("POST", `/api/v1/incidents/${encodeURIComponent(id)}/${action}`, text ? { note: text } : {});
      if (text) note.value = "";
      await load();
      replace(actionMsg, notice(action === "notes" ? "Note added." : `Incident is ${after.status}.`, "ok"));
    } catch (err) {
      draw(current);
      replace(actionMsg, errorBox(err, `Could not ${action === "notes" ? "add the note" : action}`));
    }
  };

  function draw(inc) {
    ack.disabled = inc.status !== "triggered";
    resolve.disabled = escalate.disabled = inc.status === "resolved";
    noteButton.disabled = false;
    document.title = `#${inc.number} ${inc.title} · Tocsin`;
    replace(head,
      h("p", { class: "crumbs" }, h("a", { href: "/incidents" }, "Incidents"), ` › #${inc.number}`),
      h("h1", {}, `#${inc.number} ${inc.title}`),
      h("p", { class: "meta", id: "incident-status" }, statusBadge(inc.status), " ", severityBadge(inc.severity),
        ` ${inc.team} · route ${inc.route} · ${inc.source} · opened `, timeEl(inc.created_at),
        inc.acknowledged_by ? [" · acknowledged by ", h("strong", {}, inc.acknowledged_by), " ", timeEl(inc.acknowledged_at)] : "",
        inc.resolved_by ? [" · resolved by ", h("strong", {}, inc.resolved_by), " ", timeEl(inc.resolved_at)] : ""),
      inc.details ? h("pre", { class: "details", tabindex: 0, "aria-label": "Details" }, inc.details) : "");
    replace(timelineBox, timeline(inc.timeline));
    replace(deliveriesBox, deliveries(inc.deliveries));
    const ids = inc.timeline.filter((e) => e.alert_id).map((e) => e.alert_id).join(",");
    if (ids !== rawIds) {
      rawIds = ids;
      replace(rawBox, rawPayloads(inc.timeline));
    }
    if (!shown) {
      shown = true;
      replace(main, head,
        h("div", { class: "actions", role: "group", "aria-label": "Actions" }, ack, resolve, escalate),
        actionMsg, noteForm,
        h("section", { "aria-labelledby": "tl-title" }, h("h2", { id: "tl-title" }, "Timeline"), timelineBox),
        h("section", { "aria-labelledby": "dl-title" }, h("h2", { id: "dl-title" }, "Deliveries"), deliveriesBox),
        h("section", { "aria-labelledby": "raw-title" }, h("h2", { id: "raw-title" }, "Alerts as received"), rawBox));
    }
  }

  await load();
  // A page goes out to several people at once: one reload for a burst of changes, not one per change.
  let pending = null;
  const soon = () => {
    if (!pending) pending = setTimeout(() => { pending = null; load(); }, 200);
  };
  const offs = [
    live.on("incident", (inc) => { if (inc.id === id) soon(); }),
    live.on("delivery", (d) => { if (d.incident_id === id) soon(); }),
    live.on("reset", soon),
  ];
  return () => { offs.forEach((off) => off()); clearTimeout(pending); };
}

const LABELS = {
  "incident.opened": (e) => `Opened by a ${e.source} alert${e.severity ? ` (${e.severity})` : ""}`,
  "incident.paged": (e) => `Paged ${[...(e.users || []), ...(e.channels || [])].join(", ") || "nobody"} (step ${e.step + 1}${e.repeat ? `, round ${e.repeat + 1}` : ""})`,
  "incident.alert_attached": (e) => `Alert ${e.status}: ${e.title || e.dedup_key}`,
  "incident.acknowledged": (e) => `Acknowledged by ${e.by}${e.via && e.via !== "api" ? ` via ${e.via}` : ""}`,
  "incident.escalated": (e) => `Escalated to step ${e.step + 1}${e.repeat ? ` (round ${e.repeat + 1})` : ""}${e.by ? ` by ${e.by}` : ""}`,
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
