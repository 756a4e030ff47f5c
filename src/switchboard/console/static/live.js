// "Live calls": every live call, updated from the event stream without reload.
import { follow } from "./api.js";
import { h, ms, seconds, usd } from "./format.js";

export function showLive(view, signal) {
  const calls = new Map(); // call id -> summary
  const body = h("tbody");
  const table = h("table", { "aria-label": "Live calls" },
    h("thead", {}, h("tr", {},
      ["Caller", "Dialled", "Agent", "Provider", "Carrier"].map((t) => h("th", {}, t)),
      ["Duration", "Last turn", "Cost so far"].map((t) => h("th", { class: "num" }, t)))),
    body);
  view.replaceChildren(h("h2", {}, "Live calls"), table);

  const render = () => {
    const rows = [...calls.entries()].map(([id, c]) => h("tr", { "data-call-id": id },
      h("td", {}, h("a", { href: `#/calls/${id}` }, c.from ?? "–")),
      h("td", {}, c.to ?? "–"), h("td", {}, c.agent ?? "–"),
      h("td", {}, c.provider ?? "–"), h("td", {}, c.carrier ?? "–"),
      h("td", { class: "num" }, seconds(Date.now() / 1000 - c.started_at)),
      h("td", { class: "num" }, ms(c.last_latency_ms)),
      h("td", { class: "num" }, usd(c.cost_usd))));
    body.replaceChildren(...(rows.length ? rows
      : [h("tr", {}, h("td", { colspan: 8, class: "empty" }, "No live calls."))]));
  };
  render();
  const tick = setInterval(render, 1000); // durations move on
  signal.addEventListener("abort", () => clearInterval(tick));

  follow(null, (type, event) => {
    if (type === "snapshot") {
      calls.clear();
      for (const c of event.calls) calls.set(c.call_id, c);
    } else if (type === "call.started") calls.set(event.call_id, event.data);
    else if (type === "call.updated" && calls.has(event.call_id)) {
      Object.assign(calls.get(event.call_id), event.data);
    } else if (type === "call.ended") calls.delete(event.call_id);
    else return;
    render();
  }, signal);
}
