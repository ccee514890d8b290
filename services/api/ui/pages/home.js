// Home: an "on call now" banner per team with who is next, and every open incident, kept live.

import { api } from "../api.js";
import { empty, errorBox, h, reconcile, replace } from "../dom.js";
import { timeEl, when } from "../fmt.js";
import * as live from "../live.js";
import { incidentItem, testAlertButton } from "./common.js";

export async function render(main) {
  const banners = h("div", { class: "banners" }, h("p", { class: "muted" }, "Loading who is on call…"));
  const list = h("ul", { class: "incidents", "aria-label": "Open incidents" });
  const listBox = h("div", {}, list);
  replace(main,
    h("h1", { class: "sr-only" }, "On call"),
    h("section", { "aria-labelledby": "oncall-title" }, h("h2", { id: "oncall-title" }, "On call now"), banners),
    h("section", { "aria-labelledby": "open-title" }, h("h2", { id: "open-title" }, "Open incidents"), listBox));

  const loadOncall = async () => {
    try {
      const data = await api("GET", "/api/v1/oncall");
      replace(banners, data.teams.length ? data.teams.map(teamBanner) : empty("No teams yet. Add one in the config."));
    } catch (err) {
      replace(banners, errorBox(err, "Cannot load who is on call"));
    }
  };

  const open = new Map();
  const drawn = new Map();
  const draw = () => {
    const items = [...open.values()].sort((a, b) => Date.parse(b.created_at) - Date.parse(a.created_at));
    reconcile(list, items, (inc) => incidentItem(inc, { quick: true }), drawn);
    const none = listBox.querySelector(".empty");
    if (none) none.remove();
    if (!items.length) listBox.append(empty("Nothing open. All quiet."));
  };
  const loadIncidents = async () => {
    try {
      const [triggered, acked] = await Promise.all([
        api("GET", "/api/v1/incidents?status=triggered&limit=100"),
        api("GET", "/api/v1/incidents?status=acknowledged&limit=100"),
      ]);
      open.clear();
      for (const inc of [...triggered.items, ...acked.items]) open.set(inc.id, inc);
      draw();
    } catch (err) {
      replace(listBox, errorBox(err, "Cannot load incidents"));
    }
  };

  await Promise.all([loadOncall(), loadIncidents()]);
  const offs = [
    live.on("incident", (inc) => {
      if (inc.status === "resolved") open.delete(inc.id); else open.set(inc.id, inc);
      draw();
    }),
    live.on("reset", () => { loadIncidents(); loadOncall(); }),
  ];
  // Who is on call changes at hand-offs: look again every minute.
  const timer = setInterval(loadOncall, 60000);
  return () => { offs.forEach((off) => off()); clearInterval(timer); };
}

function teamBanner(team) {
  const id = `team-${team.team}`;
  return h("section", { class: "banner", "aria-labelledby": id, dataset: { team: team.team } },
    h("div", { class: "banner-head" }, h("h3", { id }, team.team), testAlertButton(team.team)),
    team.rotations.length ? h("ul", { class: "rotations" }, team.rotations.map((r) =>
      h("li", { class: "rotation", dataset: { rotation: r.rotation } },
        h("span", { class: "who" }, r.user),
        r.override ? h("span", { class: "badge override", title: "An override put them on call" }, "override") : "",
        h("span", { class: "muted" }, ` ${r.rotation}`),
        h("div", { class: "until" }, "until ", timeEl(r.until, when(r.until))),
        h("div", { class: "next" }, "Next: ", h("strong", {}, r.next.user), " from ", timeEl(r.next.at, when(r.next.at))))))
      : empty("This team has no rotations."));
}
