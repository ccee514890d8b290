// Routes, read from the applied config (GET /api/v1/config, scope config:read), and the escalation policy
// editor of the Teams page (pages/teams.js).

import { api, isMissingEndpoint } from "../api.js";
import { empty, errorBox, h, notice, replace } from "../dom.js";

async function loadConfig(main, title) {
  try {
    return (await api("GET", "/api/v1/config")).config;
  } catch (err) {
    replace(main, h("h1", {}, title), errorBox(err, "Cannot read the config"));
    return null;
  }
}

// The escalation policy of a team as a form: ordered steps of targets and a wait, and the repeat count.
// Saved with PUT /api/v1/teams/{team}/escalation and If-Match, so a policy changed meanwhile is not
// overwritten (409 with the API's message). `saved` hears the new revision.
export function escalationEditor(name, policy, revision, saved = () => {}) {
  const id = `esc-${name}`;
  const msg = h("div", { "aria-live": "polite" });
  const steps = h("ol", { class: "steps" });
  const addStep = (step) => {
    const n = steps.children.length + 1;
    const li = h("li", { class: "step" },
      h("label", { for: `${id}-t${n}` }, `Step ${n}: notify (comma-separated: rotation:NAME, user:NAME, channel:NAME, team:NAME)`),
      h("input", { id: `${id}-t${n}`, name: "notify", value: (step.notify || []).join(", "), required: true }),
      h("label", { for: `${id}-w${n}` }, `Step ${n}: wait before the next step`),
      h("input", { id: `${id}-w${n}`, name: "wait", value: step.wait || "5m", required: true, pattern: "[0-9]+[smhdw]" }),
      h("button", { type: "button", "aria-label": `Remove step ${n}`, onclick: () => { li.remove(); } }, "Remove step"));
    steps.append(li);
  };
  (policy.steps || []).forEach(addStep);
  const repeat = h("input", { id: `${id}-repeat`, name: "repeat", type: "number", min: 0, max: 10, value: policy.repeat || 0 });
  const form = h("form", { class: "escalation-form" }, steps,
    h("button", { type: "button", onclick: () => addStep({ notify: [], wait: "5m" }) }, "Add a step"),
    h("label", { for: `${id}-repeat` }, "Run the whole policy again this many times"), repeat,
    h("div", {}, h("button", { type: "submit", class: "primary" }, "Save escalation policy")), msg);
  let seen = revision;
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = {
      steps: [...steps.querySelectorAll("li.step")].map((li) => ({
        notify: li.querySelector("[name=notify]").value.split(",").map((t) => t.trim()).filter(Boolean),
        wait: li.querySelector("[name=wait]").value.trim(),
      })),
      repeat: Number(repeat.value || 0),
    };
    try {
      await api("PUT", `/api/v1/teams/${encodeURIComponent(name)}/escalation`, body, { "If-Match": `"${seen}"` });
      const fresh = await api("GET", "/api/v1/config");
      seen = fresh.revision;
      saved(seen);
      replace(msg, notice(`Saved: the escalation policy of ${name} is revision ${seen}.`, "ok"));
    } catch (err) {
      replace(msg, isMissingEndpoint(err)
        ? errorBox("This server cannot change escalation policies yet (no PUT /api/v1/teams/{team}/escalation). Change it in tocsin.yaml.")
        : errorBox(err, "Not saved"));
    }
  });
  return h("details", { class: "edit" }, h("summary", {}, "Edit the escalation policy"), form);
}

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
