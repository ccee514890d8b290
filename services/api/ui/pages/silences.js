// Silences: alerts that match are not paged for a time window (the incident opens, silenced). Made and
// ended through the API (POST / DELETE /api/v1/silences); the config's own silences are in tocsin.yaml.

import { api, isMissingEndpoint } from "../api.js";
import { empty, errorBox, h, notice, replace } from "../dom.js";
import { timeEl } from "../fmt.js";

export async function render(main) {
  const listBox = h("div", {}, h("p", { class: "muted" }, "Loading…"));
  const msg = h("div", { "aria-live": "polite" });
  const now = new Date();
  const later = new Date(now.getTime() + 2 * 3600 * 1000);
  const matchers = h("textarea", { id: "sil-matchers", name: "matchers", rows: 3, required: true, placeholder: "env=staging\nalertname=DiskFull" });
  const starts = h("input", { id: "sil-starts", name: "starts", type: "datetime-local", required: true, value: localInput(now) });
  const ends = h("input", { id: "sil-ends", name: "ends", type: "datetime-local", required: true, value: localInput(later) });
  const comment = h("input", { id: "sil-comment", name: "comment", maxlength: 1000 });
  const form = h("form", { class: "card" },
    h("h2", {}, "New silence"),
    h("label", { for: "sil-matchers" }, "Labels to match, one name=value a line (=~ for a regular expression, != and !~ to exclude)"), matchers,
    h("div", { class: "row2" },
      h("div", {}, h("label", { for: "sil-starts" }, "Starts"), starts),
      h("div", {}, h("label", { for: "sil-ends" }, "Ends"), ends)),
    h("label", { for: "sil-comment" }, "Why (shown to whoever looks at a silenced incident)"), comment,
    h("button", { type: "submit", class: "primary" }, "Silence"), msg);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const parsed = {};
    for (const line of matchers.value.split("\n").map((l) => l.trim()).filter(Boolean)) {
      const m = /^([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!=|!~|=)\s*(.*)$/.exec(line);
      if (!m) { replace(msg, errorBox(`Not a matcher: "${line}" (write name=value)`)); return; }
      parsed[m[1]] = m[2] === "=" ? m[3] : `${m[2]}${m[3]}`;
    }
    const body = { matchers: parsed, starts: new Date(starts.value).toISOString(), ends: new Date(ends.value).toISOString(), comment: comment.value.trim() };
    try {
      await api("POST", "/api/v1/silences", body);
      matchers.value = "";
      comment.value = "";
      replace(msg, notice("Silenced.", "ok"));
      await load();
    } catch (err) {
      replace(msg, errorBox(err, "Not silenced"));
    }
  });

  const load = async () => {
    let list;
    try {
      list = await api("GET", "/api/v1/silences");
    } catch (err) {
      replace(listBox, isMissingEndpoint(err) ? notice("This server has no silences API yet; silences are set in tocsin.yaml.", "warn") : errorBox(err));
      return;
    }
    const items = list.items.filter((s) => s.state !== "expired");
    replace(listBox, items.length ? h("ul", { class: "silences" }, items.map((s) => h("li", { class: "card", dataset: { id: s.id } },
      h("p", {}, h("span", { class: `badge silence-${s.state}` }, s.state), " ",
        h("code", {}, Object.entries(s.matchers).map(([k, v]) => `${k}${/^(=~|!=|!~)/.test(v) ? "" : "="}${v}`).join(", "))),
      h("p", { class: "meta" }, "From ", timeEl(s.starts), " to ", timeEl(s.ends), ` · by ${s.created_by}`, s.comment ? ` · ${s.comment}` : ""),
      h("button", { type: "button", "aria-label": `End the silence ${Object.entries(s.matchers).map(([k, v]) => `${k}=${v}`).join(", ")}`, onclick: async (event) => {
        event.currentTarget.disabled = true;
        try { await api("DELETE", `/api/v1/silences/${encodeURIComponent(s.id)}`); await load(); } catch (err) { replace(msg, errorBox(err, "Could not end it")); }
      } }, "End now")))) : empty("No active or coming silences."));
  };
  replace(main, h("h1", {}, "Silences"), h("section", { "aria-label": "Active and coming silences" }, listBox), form);
  await load();
}

// A datetime-local field's value for an instant, in the viewer's zone.
function localInput(date) {
  const pad = (n) => String(n).padStart(2, "0");
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${pad(date.getMinutes())}`;
}
