// The JSON API, as the UI calls it: a session cookie (password sign-in) or a personal API token, the
// CSRF header on every write, and the API's own error message on every failure.

const TOKEN_KEY = "tocsin.token";

export class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

export const session = {
  token: sessionStorage.getItem(TOKEN_KEY) || "",
  csrf: "",
  me: null,          // GET /api/v1/me, when the server has it
};

export function useToken(token) {
  session.token = token;
  if (token) sessionStorage.setItem(TOKEN_KEY, token);
  else sessionStorage.removeItem(TOKEN_KEY);
}

export function authHeaders() {
  const headers = {};
  if (session.token) headers.Authorization = `Bearer ${session.token}`;
  if (session.csrf) headers["X-CSRF-Token"] = session.csrf;
  return headers;
}

const listeners = new Set();
// Called with the error whenever the server says we are not signed in (401).
export function onSignedOut(fn) { listeners.add(fn); }

export async function api(method, path, body, extraHeaders = {}) {
  const headers = { Accept: "application/json", ...authHeaders(), ...extraHeaders };
  const init = { method, headers, credentials: "same-origin" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (err) {
    throw new ApiError(0, "network", `Cannot reach Tocsin (${err.message}). Check your connection.`);
  }
  if (response.status === 204) return null;
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = null; }
  if (!response.ok) {
    const e = (data && data.error) || {};
    const message = e.message || `${response.status} ${response.statusText || "error"}`;
    // A list of {path, message} (a config with errors) is part of the message: it says what to fix.
    const listed = Array.isArray(e.details) ? e.details.filter((d) => d && d.message).map((d) => `${d.path}: ${d.message}`) : [];
    const text = listed.length ? `${message}: ${listed.join("; ")}` : message;
    const err = new ApiError(response.status, e.code || "error", e.error_id ? `${text} (error id ${e.error_id})` : text, e.details);
    if (response.status === 401) for (const fn of listeners) fn(err);
    throw err;
  }
  return data;
}

// A 404 or 405 from the router itself (not from a handler) means this server has no such endpoint yet.
export function isMissingEndpoint(err) {
  return err instanceof ApiError && ((err.status === 404 && err.message === "Not Found") || err.status === 405);
}

// Who is signed in: /api/v1/me when the server has it; else a stored token that the API accepts.
export async function loadSession() {
  try {
    const me = await api("GET", "/api/v1/me");
    session.me = me;
    if (me && me.csrf_token) session.csrf = me.csrf_token;
    return true;
  } catch (err) {
    if (err.status === 401) return false;
    if (!isMissingEndpoint(err)) throw err;
  }
  if (!session.token) return false;
  try {
    await api("GET", "/api/v1/oncall");
    session.me = null;
    return true;
  } catch (err) {
    if (err.status === 401) { useToken(""); return false; }
    throw err;
  }
}

export async function signIn(username, password) {
  const data = await api("POST", "/api/v1/auth/login", { username, password });
  session.csrf = data.csrf_token || "";
  session.me = data.user || null;
  useToken("");
  return data;
}

export async function signOut() {
  try {
    if (!session.token) await api("POST", "/api/v1/auth/logout");
  } catch (err) {
    if (!isMissingEndpoint(err) && err.status !== 401) throw err;
  } finally {
    useToken("");
    session.csrf = "";
    session.me = null;
  }
}
