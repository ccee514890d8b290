// The service worker for Web Push (served at /sw.js, scope /). A push carries the JSON the notifier sends
// (docs/channels/webpush.md): title, body, link, tag, kind and signed answer URLs. Acknowledge and Resolve
// POST those URLs (they act as the person paged, no sign-in needed); a click elsewhere opens the incident.

self.addEventListener("install", () => self.skipWaiting());
self.addEventListener("activate", (event) => event.waitUntil(self.clients.claim()));

self.addEventListener("push", (event) => {
  let n;
  try {
    n = event.data ? event.data.json() : {};
  } catch {
    n = { title: "Tocsin", body: event.data ? event.data.text() : "" };
  }
  const actions = Array.isArray(n.actions) ? n.actions : [];
  event.waitUntil(self.registration.showNotification(n.title || "Tocsin", {
    body: n.body || "",
    tag: n.tag || undefined,
    requireInteraction: n.kind === "page" || n.kind === "escalation",
    data: { link: n.link || "/", actions },
    actions: actions.map(({ action, title }) => ({ action, title })),
  }));
});

async function answer(notification, chosen) {
  const response = await fetch(chosen.url, { method: "POST", headers: { Accept: "application/json" }, credentials: "omit" });
  if (response.ok) return;
  // Say it did not work (an expired link, an incident already resolved...), and offer the incident itself.
  let why = `${response.status}`;
  try { why = (await response.json()).error.message || why; } catch { /* not JSON */ }
  await self.registration.showNotification(`${chosen.title} did not work`, {
    body: why, tag: `${notification.tag || "tocsin"}-failed`, data: { link: notification.data.link, actions: [] } });
}

self.addEventListener("notificationclick", (event) => {
  const data = event.notification.data || { link: "/", actions: [] };
  event.notification.close();
  const chosen = (data.actions || []).find((a) => a.action === event.action);
  event.waitUntil(chosen ? answer(event.notification, chosen) : self.clients.openWindow(data.link || "/"));
});
