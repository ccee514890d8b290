// Teams: members, rotations (with the next shifts), overrides and the escalation policy, each changed
// through its own endpoint (PUT/DELETE /api/v1/teams/{team}/...). Every write names the revision this page
// read (If-Match), so a change made meanwhile by someone else is refused (409), never overwritten; after a
// write the page is drawn again from the new revision.

import { api } from "../api.js";
import { empty, errorBox, h, notice, replace } from "../dom.js";
import { timeEl, when, whenShort } from "../fmt.js";
import { actionButton } from "./common.js";
import { escalationEditor } from "./config.js";

const PREVIEW = 6;   // how many of a rotation's next shifts are shown
const ZONES = typeof Intl.supportedValuesOf === "function" ? Intl.supportedValuesOf("timeZone") : [];
const enc = encodeURIComponent;

// The next shifts as the server schedules them (overrides applied); `before` is a list already shown, which a
// freshly saved rotation must change: the api service loads a new revision from the bus a moment after the
// write, so for a few seconds it may still answer with the old schedule.
async function nextShifts(team, rotation, before = null) {
  for (let attempt = 0; ; attempt += 1) {
    let shifts;
    try {
      shifts = (await api("GET", `/api/v1/rotations/${enc(team)}.${enc(rotation)}/shifts?days=90`)).shifts.slice(0, PREVIEW);
    } catch (err) {
      if (before === null || err.status !== 404 || attempt >= 12) throw err;   // a new rotation, not loaded yet
    }
    if (shifts && (before === null || JSON.stringify(shifts) !== JSON.stringify(before) || attempt >= 12)) return shifts;
    await new Promise((done) => setTimeout(done, 400));
  }
}

function shiftList(shifts) {
  if (!shifts.length) return empty("No shifts in the next 90 days.");
  return h("ol", { class: "shifts" }, shifts.map((s) => h("li", {},
    h("strong", {}, s.user), s.override ? h("span", { class: "badge override" }, "override") : "", " ",
    timeEl(s.start, when(s.start)), " – ", timeEl(s.end, whenShort(s.end)))));
}

function field(id, label, input) {
  input.id = id;
  return h("div", { class: "field" }, h("label", { for: id }, label), input);
}

function zoneList() {
  return ZONES.length ? h("datalist", { id: "zones" }, ZONES.map((z) => h("option", { value: z }))) : "";
}

function names(text) {
  return text.split(/[\s,→>]+/).map((t) => t.trim()).filter(Boolean);
}

function rotationForm(ctx, tname, rname, spec) {
  const id = `rot-${tname}-${rname || "new"}`;
  const isNew = !rname;
  const name = isNew ? h("input", { name: "name", required: true, autocomplete: "off" }) : null;
  const members = h("input", { name: "members", value: (spec.members || []).join(", "), required: true, autocomplete: "off" });
  const shift = h("input", { name: "shift", value: spec.shift || "1w", required: true, autocomplete: "off" });
  const start = h("input", { name: "start", type: "datetime-local", value: spec.start || "", required: true });
  const zone = h("input", { name: "timezone", value: spec.timezone || "", list: "zones", autocomplete: "off",
    placeholder: "the installation's" });
  const msg = h("div", { "aria-live": "polite" });
  const form = h("form", { class: "rotation-form", "aria-label": isNew ? `New rotation in ${tname}` : `Rotation ${rname}` },
    isNew ? field(`${id}-name`, "Name of the new rotation", name) : "",
    field(`${id}-members`, "Members, in order (comma-separated)", members),
    h("div", { class: "row2" },
      field(`${id}-shift`, "Shift length (e.g. 1w, 3d, 12h)", shift),
      field(`${id}-start`, "First shift starts (in the rotation's time zone)", start),
      field(`${id}-zone`, "Time zone", zone)),
    h("div", { class: "buttons" }, h("button", { type: "submit", class: "primary" }, isNew ? "Add rotation" : `Save rotation ${rname}`)),
    msg);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const rot = isNew ? name.value.trim() : rname;
    const body = { members: names(members.value), shift: shift.value.trim(), start: start.value.slice(0, 16), timezone: zone.value.trim() };
    replace(msg, notice("Saving…"));
    try {
      await api("PUT", `/api/v1/teams/${enc(tname)}/rotations/${enc(rot)}`, body, ctx.ifMatch());
      await ctx.reload(`Saved rotation ${tname}.${rot}.`, { team: tname, rotation: rot });
    } catch (err) {
      replace(msg, errorBox(err, "Not saved"));
    }
  });
  return form;
}

function rotationCard(ctx, tname, rname, spec) {
  const preview = h("div", { class: "preview", "aria-live": "polite" }, h("p", { class: "muted" }, "Loading the next shifts…"));
  const before = ctx.previews.get(`${tname}.${rname}`);
  nextShifts(tname, rname, ctx.changed && ctx.changed.team === tname && ctx.changed.rotation === rname ? before || [] : null)
    .then((shifts) => { ctx.previews.set(`${tname}.${rname}`, shifts); replace(preview, shiftList(shifts)); })
    .catch((err) => replace(preview, errorBox(err, "Cannot show the next shifts")));
  return h("section", { class: "rotation-edit", "aria-labelledby": `rh-${tname}-${rname}` },
    h("h4", { id: `rh-${tname}-${rname}` }, `Rotation ${rname}`),
    h("p", {}, `${(spec.members || []).join(" → ")}, every ${spec.shift}, from ${spec.start}${spec.timezone ? ` (${spec.timezone})` : ""}`),
    h("h5", {}, "Next shifts"), preview,
    h("details", { class: "edit" }, h("summary", {}, `Edit rotation ${rname}`), rotationForm(ctx, tname, rname, spec),
      actionButton("Delete rotation", `Delete rotation ${rname} of ${tname}`,
        () => api("DELETE", `/api/v1/teams/${enc(tname)}/rotations/${enc(rname)}`, undefined, ctx.ifMatch()), ctx,
        `Deleted rotation ${tname}.${rname}.`)));
}

function memberSection(ctx, tname, team, users) {
  const all = [...new Set([...(team.members || []), ...(team.admins || [])])];
  const admins = new Set(team.admins || []);
  const candidates = Object.keys(users).filter((u) => !all.includes(u)).sort();
  const who = h("select", { id: `add-${tname}-user`, name: "user", required: true },
    h("option", { value: "" }, "choose a person"), candidates.map((u) => h("option", { value: u }, u)));
  const asAdmin = h("input", { type: "checkbox", id: `add-${tname}-admin`, name: "admin" });
  const msg = h("div", { "aria-live": "polite" });
  const form = h("form", { class: "inline member-form", "aria-label": `Add a member to ${tname}` },
    h("label", { for: who.id }, "Add a member"), who,
    h("span", { class: "check" }, asAdmin, h("label", { for: asAdmin.id }, "team admin (owner)")),
    h("button", { type: "submit" }, "Add member"), msg);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      await api("PUT", `/api/v1/teams/${enc(tname)}/members/${enc(who.value)}`, { admin: asAdmin.checked }, ctx.ifMatch());
      await ctx.reload(`Added ${who.value} to ${tname}.`);
    } catch (err) {
      replace(msg, errorBox(err, "Not added"));
    }
  });
  return [
    h("h3", {}, "Members"),
    all.length ? h("ul", { class: "members" }, all.map((u) => h("li", {},
      h("span", {}, u, admins.has(u) ? " (admin)" : ""), " ",
      actionButton("Remove", `Remove ${u} from ${tname}`,
        () => api("DELETE", `/api/v1/teams/${enc(tname)}/members/${enc(u)}`, undefined, ctx.ifMatch()), ctx,
        `Removed ${u} from ${tname}.`))))
      : empty("No members."),
    candidates.length ? form : "",
  ];
}

function overrideSection(ctx, tname, team) {
  const list = team.overrides || [];
  return [
    h("h3", {}, "Overrides"),
    list.length ? h("ul", { class: "overrides" }, list.map((o, i) => h("li", {},
      `${o.user} on ${o.rotation}, ${o.start.replace("T", " ")} to ${o.end.replace("T", " ")}${team.rotations?.[o.rotation]?.timezone ? ` (${team.rotations[o.rotation].timezone})` : ""} `,
      actionButton("Remove", `Remove the override of ${o.user} from ${o.start.replace("T", " ")}`,
        () => api("DELETE", `/api/v1/teams/${enc(tname)}/overrides/${i}`, undefined, ctx.ifMatch()), ctx,
        `Removed the override of ${o.user}.`))))
      : empty("No overrides. Add one on the calendar."),
  ];
}

export async function render(main) {
  const ctx = { revision: 0, previews: new Map(), changed: null };
  ctx.ifMatch = () => ({ "If-Match": `"${ctx.revision}"` });
  const draw = async (message) => {
    const { revision, config } = await api("GET", "/api/v1/config");
    ctx.revision = revision;
    const teams = Object.entries(config.teams || {});
    const status = message ? h("p", { class: "ok", role: "status", tabindex: -1 }, message) : "";
    replace(main, h("h1", {}, "Teams"), status, zoneList(),
      teams.length ? teams.map(([name, team]) => h("section", { class: "card", "aria-labelledby": `t-${name}` },
        h("h2", { id: `t-${name}` }, name),
        h("dl", { class: "facts" }, h("dt", {}, "Channels"), h("dd", {}, (team.channels || []).join(", ") || "—")),
        memberSection(ctx, name, team, config.users || {}),
        h("h3", {}, "Rotations"),
        Object.keys(team.rotations || {}).length
          ? Object.entries(team.rotations).map(([rn, r]) => rotationCard(ctx, name, rn, r))
          : empty("No rotations."),
        h("details", { class: "edit" }, h("summary", {}, "Add a rotation"), rotationForm(ctx, name, "", { shift: "1w", members: [] })),
        overrideSection(ctx, name, team),
        h("h3", {}, "Escalation"),
        team.escalation && (team.escalation.steps || []).length ? h("ol", {}, team.escalation.steps.map((s) =>
          h("li", {}, `${(s.notify || []).join(", ")}${s.wait ? `, then wait ${s.wait}` : ""}`)))
          : empty("No escalation policy."),
        team.escalation && team.escalation.repeat ? h("p", { class: "muted" }, `Repeats ${team.escalation.repeat} times.`) : "",
        escalationEditor(name, team.escalation || {}, revision, (fresh) => { ctx.revision = fresh; })))
        : empty("No teams yet."));
    if (status) status.focus();
  };
  ctx.reload = async (message, changed = null) => {
    ctx.changed = changed;
    await draw(message);
  };
  try {
    await draw("");
  } catch (err) {
    replace(main, h("h1", {}, "Teams"), errorBox(err, "Cannot read the config"));
  }
}
