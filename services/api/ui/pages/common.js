// Pieces several pages share: status badges, incident rows, the test-alert button.

import { api, isMissingEndpoint } from "../api.js";
import { errorBox, h, notice, replace } from "../dom.js";
import { ago, timeEl } from "../fmt.js";

export function statusBadge(status) {
  return h("span", { class: `badge status-${status}` }, status);
}

export function severityBadge(severity) {
  return severity ? h("span", { class: `badge sev-${severity}` }, severity) : "";
}

// One incident as a list item: a link with the number and title, then what state it is in. With
// `quick`, a triggered incident gets its Acknowledge button right in the list (one tap from a phone).
export function incidentItem(inc, { quick = false } = {}) {
  let ackButton = "";
  if (quick && inc.status === "triggered") {
    const msg = h("span", { class: "inline-msg", "aria-live": "assertive" });
    const button = h("button", { type: "button", class: "primary", "aria-label": `Acknowledge #${inc.number} ${inc.title}` }, "Acknowledge");
    button.addEventListener("click", async () => {
      button.disabled = true;
      try {
        await api("POST", `/api/v1/incidents/${encodeURIComponent(inc.id)}/acknowledge`, {});
        replace(msg, notice("Acknowledged.", "ok"));   // the live update redraws the item
      } catch (err) {
        button.disabled = false;
        replace(msg, errorBox(err, "Could not acknowledge"));
      }
    });
    ackButton = h("div", { class: "quick" }, button, msg);
  }
  return h("li", { class: `incident status-${inc.status}`, dataset: { id: inc.id } },
    h("a", { href: `/incidents/${encodeURIComponent(inc.id)}`, class: "title" }, `#${inc.number} ${inc.title}`),
    h("div", { class: "meta" },
      statusBadge(inc.status), " ", severityBadge(inc.severity), " ",
      h("span", {}, inc.team), " · ",
      timeEl(inc.created_at, ago(inc.created_at)),
      inc.acknowledged_by ? ` · acknowledged by ${inc.acknowledged_by}` : "",
      inc.resolved_by ? ` · resolved by ${inc.resolved_by}` : ""),
    ackButton);
}

export function testAlertButton(team) {
  const out = h("div", { class: "inline-msg", "aria-live": "polite" });
  const button = h("button", { type: "button", "aria-describedby": `test-${team}-msg` }, "Send test alert");
  out.id = `test-${team}-msg`;
  button.addEventListener("click", async () => {
    button.disabled = true;
    replace(out, notice("Sending…"));
    try {
      // Wait up to 10 s for the outcome per contact, so the button can say whether the page got through.
      const sent = await api("POST", `/api/v1/teams/${encodeURIComponent(team)}/test-alert?wait=10s`, {});
      const results = Object.entries(sent.results || {});
      replace(out, h("div", { class: results.some(([, r]) => r.startsWith("failed")) ? "warn" : "ok", role: "status" },
        h("p", {}, `Test page sent to ${(sent.users || []).join(", ") || "the team's channels"}.`),
        results.length ? h("ul", { class: "results" }, results.map(([to, result]) => h("li", {}, `${to}: ${result}`))) : ""));
    } catch (err) {
      replace(out, isMissingEndpoint(err)
        ? errorBox(`This server cannot send test alerts yet (no POST /api/v1/teams/${team}/test-alert).`)
        : errorBox(err, "Test alert failed"));
    } finally {
      button.disabled = false;
    }
  });
  return h("div", { class: "test-alert" }, button, out);
}

// A button that runs `action` and shows its error next to itself; on success the page is drawn
// again (`ctx.reload(done)`, `done` being what to say).
export function actionButton(label, ariaLabel, action, ctx, done, failed = "Not changed") {
  const msg = h("span", { class: "inline-msg", "aria-live": "assertive" });
  const button = h("button", { type: "button", "aria-label": ariaLabel }, label);
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      await action();
      await ctx.reload(done);
    } catch (err) {
      button.disabled = false;
      replace(msg, errorBox(err, failed));
    }
  });
  return h("span", { class: "action" }, button, msg);
}
