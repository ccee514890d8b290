// Incidents: newest first, filtered by status, team, severity, route and when they were opened (since /
// until). The filter is kept in the address, so it can be shared and the back button steps through it; a
// changed filter reloads the list in place, so the focus stays on the control being used.

import { api } from "../api.js";
import { empty, errorBox, h, reconcile, replace } from "../dom.js";
import { zone } from "../fmt.js";
import * as live from "../live.js";
import { incidentItem } from "./common.js";

const STATUSES = ["", "triggered", "acknowledged", "resolved"];
const SEVERITIES = ["", "critical", "error", "warning", "info"];
const KEYS = ["status", "team", "severity", "route", "since", "until"];

// An instant (ISO 8601, as the address has it) as a datetime-local value in the viewer's zone, and back.
function localValue(iso) {
  const t = new Date(iso);
  if (!iso || Number.isNaN(t.getTime())) return "";
  const p = (n) => String(n).padStart(2, "0");
  return `${t.getFullYear()}-${p(t.getMonth() + 1)}-${p(t.getDate())}T${p(t.getHours())}:${p(t.getMinutes())}`;
}

function isoValue(local) {
  return local ? new Date(local).toISOString() : "";
}

function select(id, name, values, current, label) {
  return [h("label", { for: id }, label),
    h("select", { id, name }, [...new Set([...values, current])].map((v) => h("option", { value: v, selected: v === current }, v || "any")))];
}

export async function render(main) {
  const read = () => Object.fromEntries(KEYS.map((k) => [k, new URLSearchParams(location.search).get(k) || ""]));
  let f = read();
  let teams = [];
  let routes = [];
  await Promise.all([
    api("GET", "/api/v1/oncall").then((o) => { teams = o.teams.map((t) => t.team); }).catch(() => {}),
    // Routes need config:read; without it the route is typed in.
    api("GET", "/api/v1/routes").then((r) => { routes = Object.keys(r.routes || {}).sort(); }).catch(() => {}),
  ]);

  const since = h("input", { id: "f-since", name: "since", type: "datetime-local", value: localValue(f.since) });
  const until = h("input", { id: "f-until", name: "until", type: "datetime-local", value: localValue(f.until) });
  const formMsg = h("div", { "aria-live": "assertive" });
  const form = h("form", { class: "filters", role: "search", "aria-label": "Filter incidents" },
    h("span", { class: "filter" }, select("f-status", "status", STATUSES, f.status, "Status")),
    h("span", { class: "filter" }, select("f-team", "team", ["", ...teams], f.team, "Team")),
    h("span", { class: "filter" }, select("f-severity", "severity", SEVERITIES, f.severity, "Severity")),
    h("span", { class: "filter" }, select("f-route", "route", ["", ...routes], f.route, "Route")),
    h("span", { class: "filter" }, h("label", { for: "f-since" }, `Opened since (${zone})`), since),
    h("span", { class: "filter" }, h("label", { for: "f-until" }, `Opened before (${zone})`), until),
    h("span", { class: "filter-buttons" },
      h("button", { type: "submit" }, "Filter"),
      h("button", { type: "button", onclick: () => { form.reset(); for (const el of form.querySelectorAll("select")) el.value = ""; since.value = ""; until.value = ""; apply(); } }, "Clear")),
    formMsg);

  const list = h("ul", { class: "incidents", "aria-label": "Incidents" });
  const more = h("div", {});
  replace(main, h("h1", {}, "Incidents"), form, h("div", {}, list, more));

  const shown = new Map();
  const drawn = new Map();
  const matches = (inc) => (!f.status || inc.status === f.status) && (!f.team || inc.team === f.team)
    && (!f.severity || inc.severity === f.severity) && (!f.route || inc.route === f.route)
    && (!f.since || Date.parse(inc.created_at) >= Date.parse(f.since))
    && (!f.until || Date.parse(inc.created_at) < Date.parse(f.until));
  const filtered = () => KEYS.some((k) => f[k]);
  const draw = () => {
    const items = [...shown.values()].sort((a, b) => Date.parse(b.created_at) - Date.parse(a.created_at));
    reconcile(list, items, (inc) => incidentItem(inc), drawn);
    const none = more.querySelector(".empty");
    if (none && items.length) none.remove();
    if (!items.length) replace(more, empty(filtered() ? "No incidents match these filters." : "No incidents yet."));
  };
  let loading = 0;
  const load = async (cursor) => {
    const mine = cursor ? loading : ++loading;   // a newer filter wins over an answer still on its way
    const q = new URLSearchParams({ limit: "50" });
    for (const k of KEYS) if (f[k]) q.set(k, f[k]);
    if (cursor) q.set("cursor", cursor);
    try {
      const page = await api("GET", `/api/v1/incidents?${q}`);
      if (mine !== loading) return;
      if (!cursor) { shown.clear(); }
      for (const inc of page.items) shown.set(inc.id, inc);
      replace(more);
      draw();
      if (page.next_cursor) {
        more.append(h("button", { type: "button", onclick: () => load(page.next_cursor) }, "Show older"));
      }
    } catch (err) {
      if (mine !== loading) return;
      shown.clear();
      draw();
      replace(more, errorBox(err, "Cannot load incidents"));
    }
  };
  function apply(event) {
    if (event) event.preventDefault();
    const next = {
      status: form.status.value, team: form.team.value, severity: form.severity.value, route: form.route.value,
      since: isoValue(since.value), until: isoValue(until.value),
    };
    if (next.since && next.until && next.since >= next.until) {
      replace(formMsg, errorBox("“Opened before” must be later than “Opened since”."));
      return;
    }
    replace(formMsg);
    const q = new URLSearchParams();
    for (const k of KEYS) if (next[k]) q.set(k, next[k]);
    const url = `/incidents${q.toString() ? `?${q}` : ""}`;
    if (url !== location.pathname + location.search) history.pushState(null, "", url);
    f = next;
    load();
  }
  form.addEventListener("submit", apply);
  // A list choice applies at once; a time applies with the Filter button, since it is typed in parts.
  form.addEventListener("change", (event) => { if (event.target.tagName === "SELECT") apply(); });

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
