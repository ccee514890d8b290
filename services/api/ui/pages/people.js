// People: who they are, how each one is reached (contact methods) and in what order (rules).
// An administrator adds people and changes anything (PUT /api/v1/users/{user}: the whole person, rules
// included). Everyone else sees only themselves and keeps their own contact methods
// (PUT/DELETE /api/v1/users/{me}/contacts/{name}); their details and rules are an administrator's to change,
// as the API has it. Secrets come back masked (********); sending the mask back keeps the stored value.

import { api, session } from "../api.js";
import { empty, errorBox, h, replace } from "../dom.js";
import { actionButton } from "./common.js";

const enc = encodeURIComponent;
const MASK = "********";

// The fields of each contact type (docs/configuration.md, "Channel types"); required ones first.
// webpush is subscribed from the browser (Profile), not typed in.
const TYPES = {
  ntfy: ["topic", "server", "token", "priority", "tags"],
  webhook: ["url", "secret"],
  log: [],
  email: ["to"],
  sms: ["to"],
  voice: ["to"],
  pushover: ["user_key", "priority", "sound", "device", "retry", "expire"],
  signal: ["recipient"],
  telegram: ["chat_id"],
  mattermost: ["url", "channel", "icon_url", "mode", "server", "token", "channel_id"],
  slack: ["url"],
  discord: ["url"],
  teams: ["url"],
};
const NUMBERS = { pushover: ["priority", "retry", "expire"] };
const LISTS = { ntfy: ["tags"] };
const HINTS = {
  email: "Leave To empty to use the person's email.",
  sms: "Leave To empty to use the person's phone (E.164, e.g. +15550003333).",
  voice: "Leave To empty to use the person's phone (E.164).",
  signal: "Leave Recipient empty to use the person's phone.",
};

function field(id, label, input, hint = "") {
  input.id = id;
  if (hint) input.setAttribute("aria-describedby", `${id}-hint`);
  return h("div", { class: "field" }, h("label", { for: id }, label), input,
    hint ? h("p", { class: "muted hint", id: `${id}-hint` }, hint) : "");
}

// The contact as the form shows it, back to what the API takes: empty fields left out, numbers and lists typed.
function contactBody(type, values) {
  const out = { type };
  for (const [key, raw] of Object.entries(values)) {
    const value = raw.trim();
    if (!value) continue;
    if ((NUMBERS[type] || []).includes(key) && /^-?\d+$/.test(value)) out[key] = Number(value);
    else if ((LISTS[type] || []).includes(key) || (key === "to" && type === "email" && value.includes(","))) {
      out[key] = value.split(",").map((v) => v.trim()).filter(Boolean);
    } else out[key] = value;
  }
  return out;
}

function contactForm(ctx, uname, cname, contact) {
  const id = `c-${uname}-${cname || "new"}`;
  const isNew = !cname;
  const name = h("input", { name: "name", required: true, autocomplete: "off", pattern: "[A-Za-z0-9._\\-]{1,63}" });
  const type = h("select", { name: "type" }, Object.keys(TYPES).map((t) => h("option", { value: t, selected: t === (contact.type || "ntfy") }, t)));
  const fields = h("div", { class: "row2" });
  const drawFields = () => {
    const t = type.value;
    replace(fields, TYPES[t].map((f) => {
      const v = contact.type === t && contact[f] !== undefined ? contact[f] : "";
      const input = h("input", { name: f, value: Array.isArray(v) ? v.join(", ") : String(v), autocomplete: "off" });
      return field(`${id}-${f}`, f.replace(/_/g, " "), input, f === TYPES[t][0] ? HINTS[t] || "" : "");
    }));
    if (!TYPES[t].length) fields.append(h("p", { class: "muted" }, "No fields: pages are written to the notifier's log."));
  };
  type.addEventListener("change", drawFields);
  drawFields();
  const msg = h("div", { "aria-live": "polite" });
  const form = h("form", { class: "contact-form", "aria-label": isNew ? `New contact method for ${uname}` : `Contact method ${cname}` },
    isNew ? field(`${id}-name`, "Name of the contact method (e.g. phone, push)", name) : "",
    field(`${id}-type`, "Type", type), fields,
    h("p", { class: "muted" }, `Secret fields show ${MASK}; leave them so to keep the stored value.`),
    h("button", { type: "submit", class: "primary" }, isNew ? "Add contact method" : `Save ${cname}`), msg);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const c = isNew ? name.value.trim() : cname;
    const values = Object.fromEntries([...fields.querySelectorAll("input")].map((i) => [i.name, i.value]));
    try {
      await api("PUT", `/api/v1/users/${enc(uname)}/contacts/${enc(c)}`, contactBody(type.value, values), ctx.ifMatch());
      await ctx.reload(`Saved the contact method ${c} of ${uname}.`);
    } catch (err) {
      replace(msg, errorBox(err, "Not saved"));
    }
  });
  return form;
}

// The person's details and rules, saved together as the whole user (administrators only).
function userForm(ctx, uname, user) {
  const id = `u-${uname || "new"}`;
  const isNew = !uname;
  const inputs = {
    name: h("input", { value: user.name || "", autocomplete: "off" }),
    email: h("input", { type: "email", value: user.email || "", autocomplete: "off" }),
    phone: h("input", { type: "tel", value: user.phone || "", autocomplete: "off", placeholder: "+15550003333" }),
    timezone: h("input", { value: user.timezone || "", list: "zones", autocomplete: "off", placeholder: "the installation's" }),
  };
  const role = h("select", {}, ["user", "admin"].map((r) => h("option", { value: r, selected: r === (user.role || "user") }, r)));
  const username = h("input", { required: true, autocomplete: "off", pattern: "[A-Za-z0-9._\\-]{1,63}" });
  const contacts = Object.keys(user.contacts || {});
  const rules = h("ol", { class: "rules" });
  const addRule = (rule) => {
    const li = h("li", { class: "rule" });
    const contact = h("select", { name: "contact" },
      [...new Set([...contacts, rule.contact].filter(Boolean))].map((c) => h("option", { value: c, selected: c === rule.contact }, c)));
    const after = h("input", { name: "after", value: rule.after || "0s", required: true, autocomplete: "off" });
    const renumber = () => [...rules.children].forEach((el, i) => {
      const n = i + 1;
      el.querySelector("[name=contact]").setAttribute("aria-label", `Rule ${n}: contact method`);
      el.querySelector("[name=after]").setAttribute("aria-label", `Rule ${n}: after (e.g. 0s, 3m)`);
      el.querySelector(".up").setAttribute("aria-label", `Move rule ${n} up`);
      el.querySelector(".down").setAttribute("aria-label", `Move rule ${n} down`);
      el.querySelector(".remove").setAttribute("aria-label", `Remove rule ${n}`);
    });
    const move = (dir) => {
      const other = dir < 0 ? li.previousElementSibling : li.nextElementSibling;
      if (!other) return;
      if (dir < 0) rules.insertBefore(li, other); else rules.insertBefore(other, li);
      renumber();
    };
    li.append(h("span", { class: "rule-row" }, contact, h("span", {}, "after"), after),
      h("span", { class: "rule-buttons" },
        h("button", { type: "button", class: "up", onclick: () => { move(-1); li.querySelector(".up").focus(); } }, "↑"),
        h("button", { type: "button", class: "down", onclick: () => { move(1); li.querySelector(".down").focus(); } }, "↓"),
        h("button", { type: "button", class: "remove", onclick: () => { li.remove(); renumber(); } }, "Remove")));
    rules.append(li);
    renumber();
  };
  (user.rules || []).forEach(addRule);
  const msg = h("div", { "aria-live": "polite" });
  const form = h("form", { class: "user-form", "aria-label": isNew ? "Add a person" : `Details and rules of ${uname}` },
    isNew ? field(`${id}-username`, "Username", username) : "",
    h("div", { class: "row2" },
      field(`${id}-name`, "Name", inputs.name),
      field(`${id}-email`, "Email", inputs.email),
      field(`${id}-phone`, "Phone (E.164)", inputs.phone),
      field(`${id}-tz`, "Time zone", inputs.timezone),
      field(`${id}-role`, "Role", role)),
    isNew ? "" : [
      h("h4", {}, "Rules (in order)"),
      h("p", { class: "muted" }, "Without rules, every contact method is used at once."),
      rules,
      contacts.length ? h("button", { type: "button", onclick: () => addRule({ contact: contacts[0], after: "0s" }) }, "Add a rule") : "",
    ],
    h("div", { class: "buttons" }, h("button", { type: "submit", class: "primary" }, isNew ? "Add person" : `Save ${uname}`)), msg);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const who = isNew ? username.value.trim() : uname;
    const body = {
      ...user,   // contacts (masked secrets are kept) and chat accounts go back unchanged
      name: inputs.name.value.trim(), email: inputs.email.value.trim(), phone: inputs.phone.value.trim(),
      timezone: inputs.timezone.value.trim(), role: role.value,
      rules: [...rules.querySelectorAll("li.rule")].map((li) => ({
        contact: li.querySelector("[name=contact]").value, after: li.querySelector("[name=after]").value.trim(),
      })),
    };
    if (isNew) {
      body.contacts = {};
      body.rules = [];
      // A PUT replaces: a name already taken would overwrite that person. If-Match keeps this check true.
      if (ctx.names.has(who)) { replace(msg, errorBox(`There is already a person named ${who}.`, "Not saved")); return; }
    }
    try {
      await api("PUT", `/api/v1/users/${enc(who)}`, body, ctx.ifMatch());
      await ctx.reload(isNew ? `Added ${who}.` : `Saved ${who}.`);
    } catch (err) {
      replace(msg, errorBox(err, "Not saved"));
    }
  });
  return form;
}

function describe(c) {
  return Object.entries(c).filter(([k]) => k !== "type")
    .map(([k, v]) => ` · ${k} ${typeof v === "object" ? JSON.stringify(v) : v}`).join("");
}

function personCard(ctx, uname, u, admin) {
  const contacts = Object.entries(u.contacts || {});
  return h("section", { class: "card", "aria-labelledby": `u-${uname}` },
    h("h2", { id: `u-${uname}` }, u.name ? `${u.name} (${uname})` : uname),
    h("dl", { class: "facts" },
      h("dt", {}, "Email"), h("dd", {}, u.email || "—"),
      h("dt", {}, "Phone"), h("dd", {}, u.phone || "—"),
      h("dt", {}, "Role"), h("dd", {}, u.role || "user"),
      h("dt", {}, "Time zone"), h("dd", {}, u.timezone || "the installation's")),
    h("h3", {}, "Contact methods"),
    contacts.length ? h("ul", { class: "contacts" }, contacts.map(([cname, c]) => h("li", {},
      h("span", {}, h("strong", {}, cname), `: ${c.type}`, describe(c)), " ",
      c.type in TYPES ? h("details", { class: "edit" }, h("summary", {}, `Edit ${cname}`), contactForm(ctx, uname, cname, c)) : "",
      actionButton("Remove", `Remove the contact method ${cname} of ${uname}`,
        () => api("DELETE", `/api/v1/users/${enc(uname)}/contacts/${enc(cname)}`, undefined, ctx.ifMatch()), ctx,
        `Removed the contact method ${cname} of ${uname}.`, "Not removed"))))
      : empty("No contact methods: this person cannot be paged."),
    h("details", { class: "edit" }, h("summary", {}, "Add a contact method"), contactForm(ctx, uname, "", {})),
    h("h3", {}, "Rules"),
    (u.rules || []).length ? h("ol", {}, u.rules.map((r) => h("li", {}, `${r.contact} after ${r.after || "0s"}`)))
      : h("p", { class: "muted" }, "No rules: every contact method at once."),
    admin ? h("details", { class: "edit" }, h("summary", {}, `Edit details and rules of ${uname}`), userForm(ctx, uname, u))
      : h("p", { class: "muted" }, "Your name, email, phone, time zone and rules are changed by an administrator."));
}

export async function render(main) {
  const me = session.me;
  const admin = !me || me.role === "admin";
  const ctx = { revision: 0 };
  ctx.ifMatch = () => ({ "If-Match": `"${ctx.revision}"` });
  const zones = typeof Intl.supportedValuesOf === "function" ? Intl.supportedValuesOf("timeZone") : [];
  const draw = async (message) => {
    const got = await api("GET", "/api/v1/users");
    ctx.revision = got.revision;
    ctx.names = new Set(Object.keys(got.users || {}));
    let list = Object.entries(got.users || {}).sort(([a], [b]) => a.localeCompare(b));
    if (!admin) list = list.filter(([name]) => name === me.username);
    const status = message ? h("p", { class: "ok", role: "status", tabindex: -1 }, message) : "";
    replace(main, h("h1", {}, admin ? "People" : "Your contact methods"), status,
      h("datalist", { id: "zones" }, zones.map((z) => h("option", { value: z }))),
      admin ? h("details", { class: "edit card" }, h("summary", {}, "Add a person"), userForm(ctx, "", {})) : "",
      list.length ? list.map(([name, u]) => personCard(ctx, name, u, admin)) : empty(admin ? "No users yet." : "You are not in the config's users."));
    if (status) status.focus();
  };
  ctx.reload = draw;
  try {
    await draw("");
  } catch (err) {
    replace(main, h("h1", {}, "People"), errorBox(err, "Cannot read the people"));
  }
}
