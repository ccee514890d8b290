// Incidents: newest first, filtered by status and team (kept in the address, so a filter can be shared).

import { api } from "../api.js";
import { empty, errorBox, h, reconcile, replace } from "../dom.js";
import * as live from "../live.js";
import { incidentItem } from "./common.js";

const STATUSES = ["", "triggered", "acknowledged", "resolved"];

export async function render(main, { query, navigate }) {
  const status = query.get("status") || "";
  const team = query.get("team") || "";
  let teams = [];
  try { teams = (await api("GET", "/api/v1/oncall")).teams.map((t) => t.team); } catch { teams = []; }

  const form = h("form", { class: "filters", role: "search", "aria-label": "Filter incidents" },
    h("label", { for: "f-status" }, "Status"),
    h("select", { id: "f-status", name: "status" },
      STATUSES.map((s) => h("option", { value: s, selected: s === status }, s || "any"))),
    h("label", { for: "f-team" }, "Team"),
    h("select", { id: "f-team", name: "team" },
      ["", ...new Set([...teams, ...(team ? [team] : [])])].map((t) => h("option", { value: t, selected: t === team }, t || "any"))),
    h("button", { type: "submit" }, "Filter"));
  const apply = (event) => {
    if (event) event.preventDefault();
    const q = new URLSearchParams();
    if (form.status.value) q.set("status", form.status.value);
    if (form.team.value) q.set("team", form.team.value);
    navigate(`/incidents${q.toString() ? `?${q}` : ""}`);
  };
  form.addEventListener("submit", apply);
  form.addEventListener("change", apply);

  const list = h("ul", { class: "incidents", "aria-label": "Incidents" });
  const more = h("div", {});
  const box = h("div", {}, list, more);
  replace(main, h("h1", {}, "Incidents"), form, box);

  const shown = new Map();
  const drawn = new Map();
  const matches = (inc) => (!status || inc.status === status) && (!team || inc.team === team);
  const draw = () => {
    const items = [...shown.values()].sort((a, b) => Date.parse(b.created_at) - Date.parse(a.created_at));
    reconcile(list, items, (inc) => incidentItem(inc), drawn);
    const none = more.querySelector(".empty");
    if (none && items.length) none.remove();
    if (!items.length) replace(more, empty(status || team ? "No incidents match these filters." : "No incidents yet."));
  };
  const load = async (cursor) => {
    const q = new URLSearchParams({ limit: "50" });
    if (status) q.set("status", status);
    if (team) q.set("team", team);
    if (cursor) q.set("cursor", cursor);
    try {
      const page = await api("GET", `/api/v1/incidents?${q}`);
      if (!cursor) shown.clear();
      for (const inc of page.items) shown.set(inc.id, inc);
      replace(more);
      draw();
      if (page.next_cursor) {
        more.append(h("button", { type: "button", onclick: () => load(page.next_cursor) }, "Show older"));
      }
    } catch (err) {
      replace(more, errorBox(err, "Cannot load incidents"));
    }
  };
  await load();
  const offs = [
    live.on("incident", (inc) => {
      if (matches(inc)) shown.set(inc.id, inc); else shown.delete(inc.id);
      draw();
    }),
    live.on("reset", () => load()),
  ];
  return () => offs.forEach((off) => off());
}
