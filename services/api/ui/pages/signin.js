// Sign in with a username and password (a session cookie), or with a personal API token.

import { api, isMissingEndpoint, loadSession, signIn, useToken } from "../api.js";
import { errorBox, h, replace } from "../dom.js";

export async function render(main, { query, onSignedIn }) {
  const next = query.get("next") || "/";
  const message = h("div", { "aria-live": "assertive" });

  const password = h("form", { class: "card narrow", "aria-labelledby": "pw-title" },
    h("h2", { id: "pw-title" }, "With your password"),
    h("label", { for: "username" }, "Username"),
    h("input", { id: "username", name: "username", autocomplete: "username", required: true, autocapitalize: "none" }),
    h("label", { for: "password" }, "Password"),
    h("input", { id: "password", name: "password", type: "password", autocomplete: "current-password", required: true }),
    h("button", { type: "submit", class: "primary" }, "Sign in"));
  password.addEventListener("submit", async (event) => {
    event.preventDefault();
    replace(message);
    const button = password.querySelector("button");
    button.disabled = true;
    try {
      await signIn(password.username.value.trim(), password.password.value);
      await loadSession();
      onSignedIn(next);
    } catch (err) {
      if (err.status === 401) replace(message, errorBox("Wrong username or password."));
      else if (err.status === 429) replace(message, errorBox(`Too many attempts: ${err.message}. Wait a minute and try again.`));
      else if (isMissingEndpoint(err)) replace(message, errorBox("This server has no password sign-in yet. Use an API token below."));
      else replace(message, errorBox(err));
    } finally {
      button.disabled = false;
    }
  });

  const token = h("form", { class: "card narrow", "aria-labelledby": "tk-title" },
    h("h2", { id: "tk-title" }, "With an API token"),
    h("p", { class: "muted" }, "Create one on the Tocsin machine with ", h("code", {}, "tocsin token create USER"), "."),
    h("label", { for: "token" }, "API token"),
    h("input", { id: "token", name: "token", type: "password", autocomplete: "off", required: true, spellcheck: "false" }),
    h("button", { type: "submit" }, "Use token"));
  token.addEventListener("submit", async (event) => {
    event.preventDefault();
    replace(message);
    useToken(token.token.value.trim());
    try {
      await api("GET", "/api/v1/oncall");
      await loadSession();
      onSignedIn(next);
    } catch (err) {
      useToken("");
      replace(message, errorBox(err.status === 401 ? `That token was refused: ${err.message}.` : err.message));
    }
  });

  replace(main, h("h1", {}, "Sign in to Tocsin"), message, h("div", { class: "cols" }, password, token));
  main.querySelector("#username").focus();
}
