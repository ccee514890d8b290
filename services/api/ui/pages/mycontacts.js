// Profile sections: my contact methods with "send me a test", and Web Push on this device.

import { api } from "../api.js";
import { empty, errorBox, h, notice, replace } from "../dom.js";
import { describe, testButton } from "./testbutton.js";

// My contacts (GET /api/v1/users/{me}, secrets masked), each with Test (POST /api/v1/me/contacts/{c}/test).
export async function loadContacts(box, me) {
  if (!me) { replace(box, notice("Sign in with a password or a token of a configured user to see your contacts.")); return; }
  let user;
  try {
    user = await api("GET", `/api/v1/users/${encodeURIComponent(me.username)}`);
  } catch (err) {
    replace(box, errorBox(err, "Cannot read your contacts"));
    return;
  }
  const contacts = Object.entries(user.contacts || {});
  replace(box, contacts.length
    ? h("ul", { class: "contacts" }, contacts.map(([name, spec]) => h("li", { dataset: { contact: name } },
      h("strong", {}, name), ` (${spec.type}) `, h("span", { class: "muted" }, describe(spec)), " ",
      testButton(`/api/v1/me/contacts/${encodeURIComponent(name)}/test`, `Send me a test through ${name}`))))
    : empty("You have no contact methods: pages cannot reach you."));
}

// base64url (the VAPID public key as the API gives it) to the bytes pushManager.subscribe takes.
function keyBytes(text) {
  const b64 = text.replace(/-/g, "+").replace(/_/g, "/") + "=".repeat((4 - (text.length % 4)) % 4);
  return Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
}

// Register the service worker (/sw.js, scope /), ask for permission, subscribe with the server's VAPID
// key, and store the subscription as a webpush contact of mine (PUT /api/v1/users/{me}/contacts/{name}).
export function pushSection(me, contactsBox) {
  const msg = h("div", { id: "push-msg", "aria-live": "polite" });
  if (!("serviceWorker" in navigator) || !("PushManager" in window) || !("Notification" in window)) {
    return h("div", {}, notice("This browser cannot receive push notifications (no service worker or Push API here; on an iPhone, add Tocsin to the home screen first).", "warn"));
  }
  if (!me) return h("div", {}, notice("Push needs a signed-in user of the config."));
  const name = h("input", { id: "push-name", name: "name", value: "browser", required: true, maxlength: 63, pattern: "[A-Za-z0-9._\\-]+" });
  const button = h("button", { type: "submit", class: "primary" }, "Enable push on this device");
  const form = h("form", { class: "inline" }, h("label", { for: "push-name" }, "Contact name for this device"), name, button);
  const step = (text) => replace(msg, notice(text));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    button.disabled = true;
    try {
      step("Reading the server's push key…");
      const { public_key: key } = await api("GET", "/api/v1/webpush/key");
      step("Installing the service worker…");
      const registration = await navigator.serviceWorker.register("/sw.js", { scope: "/" });
      await navigator.serviceWorker.ready;
      step("Asking for permission to show notifications…");
      const permission = await Notification.requestPermission();
      if (permission !== "granted") throw new Error(`notifications are ${permission === "denied" ? "blocked" : "not allowed"} for this site; allow them in the browser's site settings`);
      step("Subscribing with the browser's push service…");
      let subscription;
      try {
        // A browser without a reachable push service may never answer: give up after 20 s and say so.
        subscription = await Promise.race([
          registration.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: keyBytes(key) }),
          new Promise((_, reject) => setTimeout(() => reject(new DOMException("no answer from the browser's push service within 20 s", "TimeoutError")), 20000)),
        ]);
      } catch (err) {
        throw new Error(`the browser could not subscribe (${err.name}: ${err.message})`);
      }
      step("Saving the subscription…");
      const contact = name.value.trim();
      await api("PUT", `/api/v1/users/${encodeURIComponent(me.username)}/contacts/${encodeURIComponent(contact)}`,
        { type: "webpush", subscription: JSON.stringify(subscription) });
      replace(msg, notice(`Push is on for this device as your contact "${contact}". If you have contact rules, add it to them to be paged here.`, "ok"));
      if (contactsBox) await loadContacts(contactsBox, me);
    } catch (err) {
      replace(msg, errorBox(err, "Push not enabled"));
    } finally {
      button.disabled = false;
    }
  });
  return h("div", {}, h("p", { class: "muted" }, "Pages arrive as notifications with Acknowledge and Resolve buttons, even when Tocsin is not open."), form, msg);
}
