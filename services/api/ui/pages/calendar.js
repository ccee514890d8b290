// Calendar: the next 90 days per team and rotation, a grid of days with who is on call, overrides marked.
// The shifts come from GET /api/v1/rotations/{team}.{rotation}/shifts when the server has it; otherwise
// only what GET /api/v1/oncall knows (the current shift and who is next) is drawn, and the page says so.

import { api, isMissingEndpoint } from "../api.js";
import { day, timeEl, zone } from "../fmt.js";
import { empty, errorBox, h, notice, replace } from "../dom.js";

const DAYS = 90;

export function shiftsPath(team, rotation, from) {
  const id = encodeURIComponent(`${team}.${rotation}`);
  return `/api/v1/rotations/${id}/shifts?from=${encodeURIComponent(from)}&days=${DAYS}`;
}

export async function render(main) {
  const data = await api("GET", "/api/v1/oncall");
  const today = new Date();
  today.setHours(0, 0, 0, 0);
  const body = h("div", {});
  replace(main, h("h1", {}, "Calendar"),
    h("p", { class: "muted" }, `The next ${DAYS} days from ${day(today)}, in ${zone}.`), body);
  if (!data.teams.length) { body.append(empty("No teams yet.")); return; }
  for (const team of data.teams) {
    const section = h("section", { class: "cal-team", "aria-labelledby": `cal-${team.team}` }, h("h2", { id: `cal-${team.team}` }, team.team));
    body.append(section);
    if (!team.rotations.length) section.append(empty("This team has no rotations."));
    for (const r of team.rotations) {
      const box = h("div", { class: "cal-rotation", dataset: { team: team.team, rotation: r.rotation } },
        h("h3", {}, `${r.rotation}`, h("span", { class: "muted" }, ` (hand-offs in ${r.timezone})`)));
      section.append(box);
      let shifts;
      let partial = false;
      try {
        const answer = await api("GET", shiftsPath(team.team, r.rotation, today.toISOString()));
        shifts = answer.shifts;
      } catch (err) {
        if (!isMissingEndpoint(err)) { box.append(errorBox(err, "Cannot load the shifts")); continue; }
        partial = true;
        shifts = [{ user: r.user, start: r.since, end: r.until, override: r.override }];
        if (r.next) shifts.push({ user: r.next.user, start: r.next.at, end: null, override: false, open: true });
      }
      if (partial) {
        box.append(notice("This server has no shifts endpoint yet, so only the current shift and who is next are shown (from /api/v1/oncall).", "warn"));
      }
      box.append(grid(today, shifts), legend());
    }
  }
}

function grid(today, shifts) {
  const spans = shifts.map((s) => ({ ...s, a: new Date(s.start).getTime(), b: s.end ? new Date(s.end).getTime() : null }));
  const cells = [];
  // Start the grid on the Monday of this week, so columns are weekdays.
  const lead = (today.getDay() + 6) % 7;
  for (let i = 0; i < lead; i++) cells.push(h("div", { class: "cal-day pad", "aria-hidden": "true" }));
  for (let i = 0; i < DAYS; i++) {
    const start = new Date(today);
    start.setDate(today.getDate() + i);
    const end = new Date(start);
    end.setDate(start.getDate() + 1);
    const a = start.getTime();
    const b = end.getTime();
    const here = [];
    for (const s of spans) {
      if (s.open) {
        if (s.a >= a && s.a < b) here.push({ ...s, from: s.start });
      } else if (s.a < b && s.b > a) {
        here.push(s);
      }
    }
    const known = here.length > 0;
    cells.push(h("div", { class: `cal-day${here.some((s) => s.override) ? " has-override" : ""}${known ? "" : " unknown"}`, role: "listitem",
      dataset: { date: isoDate(start) } },
      h("div", { class: "cal-date" }, day(start)),
      known ? h("ul", {}, dedupe(here).map((s) => h("li", { class: s.override ? "override" : "" },
        h("span", { class: "who" }, s.user),
        s.override ? h("span", { class: "badge override" }, "override") : "",
        s.from ? h("span", { class: "muted" }, " from ", timeEl(s.from, new Date(s.from).toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" }))) : "")))
        : h("span", { class: "muted" }, "?")));
  }
  return h("div", { class: "cal-grid", role: "list" },
    ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"].map((d) => h("div", { class: "cal-head", "aria-hidden": "true" }, d)), cells);
}

function dedupe(items) {
  const out = [];
  for (const s of items) {
    const last = out[out.length - 1];
    if (!last || last.user !== s.user || last.override !== s.override) out.push(s);
  }
  return out;
}

function isoDate(d) {
  return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, "0")}-${String(d.getDate()).padStart(2, "0")}`;
}

function legend() {
  return h("p", { class: "legend muted" }, h("span", { class: "badge override" }, "override"), " somebody stands in for the rotation; ? not known");
}
