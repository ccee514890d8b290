// Shared channels (GET /api/v1/channels: the ones your teams use, secrets masked), each with a Test button
// (POST /api/v1/channels/{name}/test). Administrators and team owners; changed in tocsin.yaml or the API.

import { api } from "../api.js";
import { empty, errorBox, h, replace } from "../dom.js";
import { describe, testButton } from "./testbutton.js";

export async function render(main) {
  let data;
  try {
    data = await api("GET", "/api/v1/channels");
  } catch (err) {
    replace(main, h("h1", {}, "Channels"), errorBox(err, "Cannot list the channels"));
    return;
  }
  const channels = Object.entries(data.channels || {}).sort(([a], [b]) => a.localeCompare(b));
  replace(main, h("h1", {}, "Channels"),
    h("p", { class: "muted" }, "Shared channels your teams page through. Test sends a test message through one and shows whether it arrived (secrets are shown as ********)."),
    channels.length
      ? h("table", { class: "channels" },
        h("thead", {}, h("tr", {}, ["Name", "Type", "Settings", ""].map((t) => h("th", { scope: "col" }, t)))),
        h("tbody", {}, channels.map(([name, spec]) => h("tr", { dataset: { channel: name } },
          h("td", { "data-label": "Name" }, name),
          h("td", { "data-label": "Type" }, spec.type || "?"),
          h("td", { "data-label": "Settings", class: "settings" }, describe(spec)),
          h("td", {}, testButton(`/api/v1/channels/${encodeURIComponent(name)}/test`, `Test channel ${name}`))))))
      : empty("No shared channels you can see."));
}
