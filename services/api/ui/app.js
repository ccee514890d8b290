// Boot and the client-side router (history API; the server answers every page path with this page).

import { loadSession, onSignedOut, session } from "./api.js";
import { errorBox, h, replace } from "./dom.js";
import { zone } from "./fmt.js";
import * as live from "./live.js";
import * as calendar from "./pages/calendar.js";
import * as channels from "./pages/channels.js";
import * as config from "./pages/config.js";
import * as home from "./pages/home.js";
import * as incident from "./pages/incident.js";
import * as incidents from "./pages/incidents.js";
import * as people from "./pages/people.js";
import * as profile from "./pages/profile.js";
import * as signin from "./pages/signin.js";
import * as silences from "./pages/silences.js";
import * as teams from "./pages/teams.js";

const ROUTES = [
  [/^\/$/, home, "On call"],
  [/^\/signin$/, signin, "Sign in"],
  [/^\/incidents$/, incidents, "Incidents"],
  [/^\/incidents\/([^/]+)$/, incident, "Incident"],
  [/^\/calendar$/, calendar, "Calendar"],
  [/^\/profile$/, profile, "Profile"],
  [/^\/teams$/, teams, "Teams"],
  [/^\/routes$/, config.routes, "Routes"],
  [/^\/people$/, people, "People"],
  [/^\/silences$/, silences, "Silences"],
  [/^\/channels$/, channels, "Channels"],
];

const main = document.getElementById("main");
const nav = document.getElementById("nav");
let cleanup = null;
let signedIn = false;

export function navigate(path, { replace: swap = false } = {}) {
  if (swap) history.replaceState(null, "", path);
  else history.pushState(null, "", path);
  render();
}

async function render() {
  if (cleanup) { try { cleanup(); } catch (err) { console.error(err); } }
  cleanup = null;
  const path = location.pathname.replace(/\/+$/, "") || "/";
  if (signedIn && path === "/signin") {
    navigate("/", { replace: true });
    return;
  }
  if (!signedIn && path !== "/signin") {
    navigate(`/signin?next=${encodeURIComponent(location.pathname + location.search)}`, { replace: true });
    return;
  }
  const found = ROUTES.map(([re, page, title]) => [re.exec(path), page, title]).find(([m]) => m);
  nav.hidden = !signedIn;
  // Teams and routes are read from the config, which only administrators may read.
  const admin = !session.me || session.me.role === "admin";
  for (const a of nav.querySelectorAll("[data-admin]")) a.hidden = !admin;
  // Channels: administrators and team owners (who may test the channels their teams use).
  const owner = admin || Object.values((session.me && session.me.teams) || {}).includes("owner");
  for (const a of nav.querySelectorAll("[data-owner]")) a.hidden = !owner;
  for (const a of nav.querySelectorAll("a")) {
    const here = a.getAttribute("href") === "/" ? path === "/" : path.startsWith(a.getAttribute("href"));
    if (here) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
  }
  if (!found) {
    document.title = "Not found · Tocsin";
    replace(main, h("h1", {}, "Not found"), h("p", {}, "There is no page here. ", h("a", { href: "/" }, "Go to the start.")));
    return;
  }
  const [match, page, title] = found;
  document.title = `${title} · Tocsin`;
  replace(main, h("p", { class: "muted" }, "Loading…"));
  try {
    cleanup = (await page.render(main, { params: match.slice(1).map(decodeURIComponent), query: new URLSearchParams(location.search), navigate, onSignedIn })) || null;
  } catch (err) {
    replace(main, h("h1", {}, title), errorBox(err));
  }
}

async function onSignedIn(next) {
  signedIn = true;
  live.start(document.getElementById("live"));
  navigate(next && next.startsWith("/") && !next.startsWith("//") ? next : "/", { replace: true });
}

export function signedOut() {
  signedIn = false;
  live.stop();
  navigate("/signin", { replace: true });
}

// Same-origin links are handled here, unless a modifier asks the browser for a new tab or window.
document.addEventListener("click", (event) => {
  const a = event.target.closest("a[href]");
  if (!a || a.target || a.hasAttribute("download") || event.defaultPrevented) return;
  if (event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
  const url = new URL(a.href, location.href);
  if (url.origin !== location.origin || url.pathname.startsWith("/api/") || url.pathname.startsWith("/ui/")) return;
  event.preventDefault();
  navigate(url.pathname + url.search + url.hash);
  main.focus({ preventScroll: true });
});
window.addEventListener("popstate", render);
onSignedOut(() => { if (signedIn) signedOut(); });

async function boot() {
  document.getElementById("zone").textContent = `Times are shown in ${zone}.`;
  try {
    signedIn = await loadSession();
  } catch (err) {
    replace(main, h("h1", {}, "Tocsin"), errorBox(err, "Cannot start"));
    return;
  }
  if (signedIn) live.start(document.getElementById("live"));
  render();
}

boot();
