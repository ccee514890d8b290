// Teams and routes, read from the applied config (GET /api/v1/config, scope config:read). Editing is done in
// tocsin.yaml (`tocsin config apply`) until the API has endpoints per object.

import { api } from "../api.js";
import { empty, errorBox, h, notice, replace } from "../dom.js";

async function loadConfig(main, title) {
  try {
    return (await api("GET", "/api/v1/config")).config;
  } catch (err) {
    replace(main, h("h1", {}, title), errorBox(err, "Cannot read the config"));
    return null;
  }
}

export const teams = {
  async render(main) {
    const config = await loadConfig(main, "Teams");
    if (!config) return;
    const list = Object.entries(config.teams || {});
    replace(main, h("h1", {}, "Teams"),
      notice("Read-only here: change teams in tocsin.yaml and apply it (tocsin config apply).", "info"),
      list.length ? list.map(([name, team]) => h("section", { class: "card", "aria-labelledby": `t-${name}` },
        h("h2", { id: `t-${name}` }, name),
        h("dl", { class: "facts" },
          h("dt", {}, "Members"), h("dd", {}, (team.members || []).join(", ") || "—"),
          h("dt", {}, "Admins"), h("dd", {}, (team.admins || []).join(", ") || "—"),
          h("dt", {}, "Channels"), h("dd", {}, (team.channels || []).join(", ") || "—")),
        h("h3", {}, "Rotations"),
        Object.keys(team.rotations || {}).length ? h("ul", {}, Object.entries(team.rotations).map(([rn, r]) =>
          h("li", {}, h("strong", {}, rn), `: ${(r.members || []).join(" → ")}, every ${r.shift}, from ${r.start}${r.timezone ? ` (${r.timezone})` : ""}`)))
          : empty("No rotations."),
        h("h3", {}, "Escalation"),
        team.escalation && (team.escalation.steps || []).length ? h("ol", {}, team.escalation.steps.map((s) =>
          h("li", {}, `${(s.notify || []).join(", ")}${s.wait ? `, then wait ${s.wait}` : ""}`)))
          : empty("No escalation policy."),
        team.escalation && team.escalation.repeat ? h("p", { class: "muted" }, `Repeats ${team.escalation.repeat} times.`) : ""))
        : empty("No teams yet."));
  },
};

function snippets(name, route, origin) {
  const url = `${origin}/api/v1/intake/${route.source}`;
  const out = [];
  if (route.source === "alertmanager") {
    out.push(["Alertmanager (alertmanager.yml)", `receivers:
  - name: tocsin-${name}
    webhook_configs:
      - url: ${url}
        send_resolved: true
        http_config:
          authorization:
            credentials: <ROUTE TOKEN>`]);
  }
  if (route.source === "grafana") {
    out.push(["Grafana contact point (webhook)", `Type: Webhook
URL: ${url}
HTTP method: POST
Authorization header - scheme: Bearer
Authorization header - credentials: <ROUTE TOKEN>`]);
  }
  if (route.source === "zabbix") {
    out.push(["Zabbix media type (webhook) parameter URL", `${url}?token=<ROUTE TOKEN>`]);
  }
  const body = route.source === "webhook" ? `-d '{"title": "Test from curl", "severity": "critical"}'`
    : `--data-binary @${route.source}-payload.json`;
  out.push(["curl", `curl -X POST -H 'Authorization: Bearer <ROUTE TOKEN>' -H 'Content-Type: application/json' \\
  ${body} ${url}`]);
  return out;
}

export const routes = {
  async render(main) {
    const config = await loadConfig(main, "Routes");
    if (!config) return;
    const list = Object.entries(config.routes || {});
    replace(main, h("h1", {}, "Routes"),
      notice("Route tokens are stored only as hashes, so they cannot be shown again. Use the token printed when the route was applied in place of <ROUTE TOKEN>.", "info"),
      list.length ? list.map(([name, route]) => h("section", { class: "card", "aria-labelledby": `r-${name}` },
        h("h2", { id: `r-${name}` }, name),
        h("p", {}, `${route.source} → team ${route.team}`, route.match && Object.keys(route.match).length ? ` · matches ${JSON.stringify(route.match)}` : ""),
        snippets(name, route, location.origin).map(([title, text]) => {
          const pre = h("pre", { tabindex: 0 }, text);
          const msg = h("span", { class: "muted", "aria-live": "polite" });
          return h("div", { class: "snippet" }, h("h3", {}, title), pre,
            h("button", { type: "button", "aria-label": `Copy the ${title} snippet`, onclick: async () => {
              try { await navigator.clipboard.writeText(text); msg.textContent = " Copied."; } catch { msg.textContent = " Select the text and copy it."; }
            } }, "Copy"), msg);
        })))
        : empty("No routes yet."));
  },
};
