// Times in the viewer's own time zone, always with the zone named.

export const zone = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";

const full = new Intl.DateTimeFormat(undefined, {
  weekday: "short", day: "numeric", month: "short", hour: "2-digit", minute: "2-digit", timeZoneName: "short",
});
const short = new Intl.DateTimeFormat(undefined, { day: "numeric", month: "short", hour: "2-digit", minute: "2-digit" });
const dayFmt = new Intl.DateTimeFormat(undefined, { weekday: "short", day: "numeric", month: "short" });

export function when(iso) {
  if (!iso) return "";
  return full.format(new Date(iso));
}

export function whenShort(iso) {
  if (!iso) return "";
  return short.format(new Date(iso));
}

export function day(date) {
  return dayFmt.format(date);
}

export function ago(iso) {
  if (!iso) return "";
  const seconds = Math.round((Date.now() - new Date(iso).getTime()) / 1000);
  const rtf = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" });
  const abs = Math.abs(seconds);
  if (abs < 60) return rtf.format(-seconds, "second");
  if (abs < 3600) return rtf.format(-Math.round(seconds / 60), "minute");
  if (abs < 86400) return rtf.format(-Math.round(seconds / 3600), "hour");
  return rtf.format(-Math.round(seconds / 86400), "day");
}

// A <time> element: readable text, the exact instant for machines and on hover.
export function timeEl(iso, text) {
  const el = document.createElement("time");
  el.dateTime = iso;
  el.title = iso;
  el.textContent = text ?? when(iso);
  return el;
}
