// A "Test" button that sends one test message (a shared channel, or one of your own contacts) and says
// how it went: the API waits up to 10 s for the outcome, `delivered`, `failed: <why>` or `pending`.

import { api } from "../api.js";
import { errorBox, h, notice, replace } from "../dom.js";

export function testButton(path, label) {
  const out = h("span", { class: "inline-msg", "aria-live": "polite" });
  const button = h("button", { type: "button", "aria-label": label }, "Test");
  button.addEventListener("click", async () => {
    button.disabled = true;
    replace(out, notice("Sending…"));
    try {
      const { result } = await api("POST", path);
      const kind = result === "delivered" ? "ok" : result === "pending" ? "warn" : "error";
      const text = result === "pending" ? "pending: no answer within 10 s; it may still arrive" : result;
      replace(out, h("p", { class: kind, role: kind === "error" ? "alert" : "status", dataset: { result } }, text));
    } catch (err) {
      replace(out, errorBox(err, "Test failed"));
    } finally {
      button.disabled = false;
    }
  });
  return h("span", { class: "test-button" }, button, " ", out);
}

// A channel's or contact's settings in one line, secrets as the API masks them (********).
export function describe(spec) {
  return Object.entries(spec || {}).filter(([k]) => k !== "type")
    .map(([k, v]) => `${k}: ${typeof v === "string" ? v : JSON.stringify(v)}`).join(" · ");
}
