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
    h("p", { class: "muted" }, `The next ${DAYS} days from ${day(today)}, in ${zone}. Pick two days in a grid to put somebody on call for that range.`), body);
  if (!data.teams.length) { body.append(empty("No teams yet.")); return; }
  for (const team of data.teams) {
    const section = h("section", { class: "cal-team", "aria-labelledby": `cal-${team.team}` }, h("h2", { id: `cal-${team.team}` }, team.team));
    body.append(section);
    if (!team.rotations.length) section.append(empty("This team has no rotations."));
    for (const r of team.rotations) {
      const box = h("div", { class: "cal-rotation", dataset: { team: team.team, rotation: r.rotation } });
      section.append(box);
      await drawRotation(box, team.team, r, today);
    }
  }
}

async function drawRotation(box, team, r, today, message) {
  let shifts;
  let partial = false;
  try {
    const answer = await api("GET", shiftsPath(team, r.rotation, today.toISOString()));
    shifts = answer.shifts;
  } catch (err) {
    if (!isMissingEndpoint(err)) {
      replace(box, h("h3", {}, r.rotation), errorBox(err, "Cannot load the shifts"));
      return;
    }
    partial = true;
    shifts = [{ user: r.user, start: r.since, end: r.until, override: r.override }];
    if (r.next) shifts.push({ user: r.next.user, start: r.next.at, end: null, override: false, open: true });
  }
  const form = overrideForm(box, team, r, today);
  replace(box,
    h("h3", {}, r.rotation, h("span", { class: "muted" }, ` (hand-offs in ${r.timezone})`)),
    partial ? notice("This server has no shifts endpoint yet, so only the current shift and who is next are shown (from /api/v1/oncall).", "warn") : "",
    grid(today, shifts, (date) => form.pick(date)), legend(), message || "", form.el);
}

// An override for a range of whole days in the viewer's zone, written as wall-clock times in the rotation's
// zone (as tocsin.yaml has them). Picking two days in the grid fills the range; the date fields do the same
// from the keyboard.
function overrideForm(box, team, r, today) {
  const id = `ov-${team}-${r.rotation}`;
  const msg = h("div", { "aria-live": "polite" });
  const from = h("input", { id: `${id}-from`, name: "from", type: "date", required: true, min: isoDate(today) });
  const to = h("input", { id: `${id}-to`, name: "to", type: "date", required: true, min: isoDate(today) });
  const user = h("input", { id: `${id}-user`, name: "user", required: true, autocomplete: "off", autocapitalize: "none" });
  const el = h("form", { class: "override-form card" },
    h("h4", {}, `Put somebody on call in ${r.rotation}`),
    h("div", { class: "row" },
      h("div", {}, h("label", { for: `${id}-user` }, "Who"), user),
      h("div", {}, h("label", { for: `${id}-from` }, "From (first day)"), from),
      h("div", {}, h("label", { for: `${id}-to` }, "To (last day)"), to)),
    h("button", { type: "submit", class: "primary" }, "Add override"), msg);
  let picking = false;
  el.addEventListener("submit", async (event) => {
    event.preventDefault();
    const first = localDay(from.value);
    const last = localDay(to.value);
    if (last < first) { replace(msg, errorBox("The last day is before the first.")); return; }
    const after = new Date(last);
    after.setDate(last.getDate() + 1);
    const body = { rotation: r.rotation, user: user.value.trim(), start: wallTime(first, r.timezone), end: wallTime(after, r.timezone) };
    try {
      await api("POST", `/api/v1/teams/${encodeURIComponent(team)}/overrides`, body);
      await drawRotation(box, team, r, today, notice(`${body.user} is on call in ${r.rotation} from ${day(first)} to ${day(last)}.`, "ok"));
    } catch (err) {
      replace(msg, isMissingEndpoint(err) ? errorBox("This server cannot add overrides yet (no POST /api/v1/teams/{team}/overrides). Add them to tocsin.yaml.")
        : errorBox(err, "Cannot add the override"));
    }
  });
  return {
    el,
    pick(date) {
      if (!picking || localDay(from.value) > date) { from.value = isoDate(date); to.value = isoDate(date); picking = true; }
      else { to.value = isoDate(date); picking = false; }
      highlight(box, localDay(from.value), localDay(to.value));
      if (!picking) user.focus();
    },
  };
}

function highlight(box, first, last) {
  for (const cell of box.querySelectorAll(".cal-day[data-date]")) {
    const d = localDay(cell.dataset.date);
    cell.classList.toggle("picked", d >= first && d <= last);
  }
}

function localDay(text) {
  const [y, m, d] = text.split("-").map(Number);
  return new Date(y, m - 1, d);
}

// The wall-clock time in `tz` of an instant, as tocsin.yaml writes it: 2026-12-24T00:00.
export function wallTime(date, tz) {
  const parts = Object.fromEntries(new Intl.DateTimeFormat("en-CA", {
    timeZone: tz, year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", hourCycle: "h23",
  }).formatToParts(date).map((p) => [p.type, p.value]));
  return `${parts.year}-${parts.month}-${parts.day}T${parts.hour}:${parts.minute}`;
}

function grid(today, shifts, onPick) {
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
        here.push(s.a > a ? { ...s, from: s.start } : s);   // a hand-off during the day says when
      }
    }
    const known = here.length > 0;
    const date = start;
    cells.push(h("div", { class: `cal-day${here.some((s) => s.override) ? " has-override" : ""}${known ? "" : " unknown"}`, role: "listitem",
      dataset: { date: isoDate(start) }, onclick: () => onPick(date) },
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
