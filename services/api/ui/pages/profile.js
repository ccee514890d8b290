// Profile: who you are, your API tokens, your calendar feed, and signing out.

import { api, isMissingEndpoint, session, signOut } from "../api.js";
import { empty, errorBox, h, notice, replace } from "../dom.js";
import { timeEl } from "../fmt.js";

export async function render(main) {
  const me = session.me;
  const who = me
    ? h("dl", { class: "facts" },
      h("dt", {}, "Username"), h("dd", { id: "me-username" }, me.username),
      h("dt", {}, "Name"), h("dd", {}, me.name || "—"),
      h("dt", {}, "Email"), h("dd", {}, me.email || "—"),
      h("dt", {}, "Role"), h("dd", {}, me.role || "—"),
      h("dt", {}, "Teams"), h("dd", {}, Object.entries(me.teams || {}).map(([t, r]) => `${t} (${r})`).join(", ") || "none"))
    : notice(session.token ? "Signed in with an API token. This server does not say whose (no /api/v1/me yet)." : "Signed in.");

  const tokens = h("div", {}, h("p", { class: "muted" }, "Loading…"));
  const feed = h("div", {});
  const out = h("button", { type: "button" }, "Sign out");
  out.addEventListener("click", async () => {
    try {
      await signOut();
    } finally {
      const { signedOut } = await import("../app.js");
      signedOut();
    }
  });
  replace(main, h("h1", {}, "Profile"), who,
    h("section", { "aria-labelledby": "tok-title" }, h("h2", { id: "tok-title" }, "API tokens"), tokens),
    h("section", { "aria-labelledby": "ical-title" }, h("h2", { id: "ical-title" }, "Calendar feed"), feed),
    h("section", {}, out));

  await Promise.all([loadTokens(tokens), loadFeed(feed, me)]);
}

async function loadTokens(box) {
  let list;
  try {
    list = await api("GET", "/api/v1/tokens");
  } catch (err) {
    replace(box, isMissingEndpoint(err)
      ? notice("This server cannot list tokens yet. Create one with `tocsin token create USER` on the Tocsin machine.", "warn")
      : errorBox(err));
    return;
  }
  const items = list.items || list;
  const created = h("div", { "aria-live": "polite" });
  const form = h("form", { class: "inline" },
    h("label", { for: "tok-name" }, "Name for a new token"), h("input", { id: "tok-name", name: "name", required: true }),
    h("button", { type: "submit" }, "Create token"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const made = await api("POST", "/api/v1/tokens", { name: form.name.value.trim() });
      await loadTokens(box);
      box.prepend(notice(`New token (shown once): ${made.token}`, "ok"));
    } catch (err) {
      replace(created, errorBox(err));
    }
  });
  replace(box, items.length ? h("table", {},
    h("thead", {}, h("tr", {}, ["Name", "Scopes", "Created", "Last used", ""].map((t) => h("th", { scope: "col" }, t)))),
    h("tbody", {}, items.map((t) => h("tr", {},
      h("td", { "data-label": "Name" }, t.name || "—"),
      h("td", { "data-label": "Scopes" }, (t.scopes || []).join(", ")),
      h("td", { "data-label": "Created" }, t.created_at ? timeEl(t.created_at) : "—"),
      h("td", { "data-label": "Last used" }, t.last_used_at ? timeEl(t.last_used_at) : "never"),
      h("td", {}, h("button", { type: "button", "aria-label": `Revoke token ${t.name || t.id}`, onclick: async () => {
        try { await api("DELETE", `/api/v1/tokens/${encodeURIComponent(t.id)}`); await loadTokens(box); } catch (err) { replace(created, errorBox(err)); }
      } }, "Revoke"))))))
    : empty("No tokens."), form, created);
}

async function loadFeed(box, me) {
  const url = me && (me.calendar_url || me.ical_url);
  if (url) {
    replace(box, h("p", {}, "Subscribe in your calendar app: ", h("a", { href: url }, url)));
    return;
  }
  replace(box, notice("This server has no iCal feed for you yet.", "warn"));
}
