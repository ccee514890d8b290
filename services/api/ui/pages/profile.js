// Profile: who you are, your API tokens, your calendar feeds (iCal), and signing out.

import { api, isMissingEndpoint, session, signOut } from "../api.js";
import { empty, errorBox, h, notice, replace } from "../dom.js";
import { timeEl } from "../fmt.js";
import { loadContacts, pushSection } from "./mycontacts.js";

export async function render(main) {
  const me = session.me;
  const who = me
    ? h("dl", { class: "facts" },
      h("dt", {}, "Username"), h("dd", { id: "me-username" }, me.username),
      h("dt", {}, "Name"), h("dd", {}, me.name || "—"),
      h("dt", {}, "Email"), h("dd", {}, me.email || "—"),
      h("dt", {}, "Role"), h("dd", {}, me.role || "—"),
      h("dt", {}, "Teams"), h("dd", {}, Object.entries(me.teams || {}).map(([t, r]) => `${t} (${r})`).join(", ") || "none"),
      h("dt", {}, "Signed in with"), h("dd", {}, me.via === "session" ? "password" : "an API token"))
    : notice("Signed in with an API token.");

  const tokens = h("div", {}, h("p", { class: "muted" }, "Loading…"));
  const feeds = h("div", {}, h("p", { class: "muted" }, "Loading…"));
  const contacts = h("div", {}, h("p", { class: "muted" }, "Loading…"));
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
    h("section", { "aria-labelledby": "ical-title" }, h("h2", { id: "ical-title" }, "Calendar feeds (iCal)"), feeds),
    h("section", { "aria-labelledby": "contacts-title" }, h("h2", { id: "contacts-title" }, "My contacts"), contacts),
    h("section", { "aria-labelledby": "push-title" }, h("h2", { id: "push-title" }, "Push on this device"), pushSection(me, contacts)),
    h("section", {}, out));

  await Promise.all([loadTokens(tokens), loadFeeds(feeds, me), loadContacts(contacts, me)]);
}

async function loadTokens(box, fresh) {
  let list;
  try {
    list = await api("GET", "/api/v1/me/tokens");
  } catch (err) {
    replace(box, isMissingEndpoint(err)
      ? notice("This server cannot list tokens. Create one with `tocsin token create USER` on the Tocsin machine.", "warn")
      : errorBox(err));
    return;
  }
  const msg = h("div", { "aria-live": "polite" }, fresh || "");
  const form = h("form", { class: "inline" },
    h("label", { for: "tok-name" }, "Name for a new token"), h("input", { id: "tok-name", name: "name", required: true, maxlength: 100 }),
    h("button", { type: "submit" }, "Create token"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const made = await api("POST", "/api/v1/me/tokens", { name: form.elements.name.value.trim() });
      await loadTokens(box, h("div", { class: "ok", role: "status" },
        h("p", {}, `New token "${made.name}" (${made.scopes.join(", ")}). Copy it now: it is shown only this once.`),
        h("pre", { class: "secret", tabindex: 0 }, made.token)));
    } catch (err) {
      replace(msg, errorBox(err, "Cannot create the token"));
    }
  });
  const items = list.items || [];
  replace(box, msg, items.length ? h("table", {},
    h("thead", {}, h("tr", {}, ["Name", "Scopes", "Created", "Last used", ""].map((t) => h("th", { scope: "col" }, t)))),
    h("tbody", {}, items.map((t) => h("tr", {},
      h("td", { "data-label": "Name" }, t.name || "(no name)"),
      h("td", { "data-label": "Scopes" }, (t.scopes || []).join(", ")),
      h("td", { "data-label": "Created" }, timeEl(t.created_at)),
      h("td", { "data-label": "Last used" }, t.last_used_at ? timeEl(t.last_used_at) : "never"),
      h("td", {}, h("button", { type: "button", "aria-label": `Revoke token ${t.name || t.id}`, onclick: async () => {
        if (!confirm(`Revoke the token "${t.name || t.id}"? Anything using it stops working.`)) return;
        try { await api("DELETE", `/api/v1/me/tokens/${encodeURIComponent(t.id)}`); await loadTokens(box); } catch (err) { replace(msg, errorBox(err)); }
      } }, "Revoke"))))))
    : empty("No tokens."), form);
}

async function loadFeeds(box, me, fresh) {
  let list;
  try {
    list = await api("GET", "/api/v1/me/feeds");
  } catch (err) {
    replace(box, isMissingEndpoint(err) ? notice("This server has no calendar feeds yet.", "warn") : errorBox(err));
    return;
  }
  const msg = h("div", { "aria-live": "polite" }, fresh || "");
  const teams = Object.keys((me && me.teams) || {});
  const form = h("form", { class: "inline" },
    h("label", { for: "feed-team" }, "New feed of"),
    h("select", { id: "feed-team", name: "team" }, h("option", { value: "" }, "my own shifts"),
      teams.map((t) => h("option", { value: t }, `team ${t}`))),
    h("button", { type: "submit" }, "Create feed link"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const team = form.elements.team.value;
      const made = await api("POST", "/api/v1/me/feeds", team ? { team } : {});
      await loadFeeds(box, me, h("div", { class: "ok", role: "status" },
        h("p", {}, "Subscribe to this address in your calendar app. It is secret and shown only this once."),
        h("pre", { class: "secret", tabindex: 0 }, made.url)));
    } catch (err) {
      replace(msg, errorBox(err, "Cannot create the feed"));
    }
  });
  const items = list.items || [];
  replace(box, msg, items.length ? h("ul", {}, items.map((f) => h("li", {},
    f.team ? `Team ${f.team}` : "My shifts", " · created ", timeEl(f.created_at), " ",
    h("button", { type: "button", "aria-label": `Revoke the feed ${f.team || "of my shifts"}`, onclick: async () => {
      try { await api("DELETE", `/api/v1/me/feeds/${encodeURIComponent(f.id)}`); await loadFeeds(box, me); } catch (err) { replace(msg, errorBox(err)); }
    } }, "Revoke"))))
    : empty("No feeds yet."), form);
}
