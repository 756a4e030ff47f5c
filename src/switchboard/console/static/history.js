// History: the calls list with filters (time, agent, outcome, number) and transcript search.
import { api } from "./api.js";
import { h, seconds, status, usd, when } from "./format.js";

const FILTERS = [
  ["since", "From", "datetime-local"], ["until", "To", "datetime-local"],
  ["agent", "Agent", "text"], ["outcome", "Outcome", "text"], ["number", "Number", "text"],
  ["q", "Transcript contains", "search"],
];

export function showHistory(view, signal) {
  const inputs = Object.fromEntries(FILTERS.map(([name, , type]) =>
    [name, h("input", { name, type })]));
  const body = h("tbody");
  const more = h("button", { type: "button", hidden: true }, "Older calls");
  const form = h("form", { class: "inline", "aria-label": "Filters" },
    FILTERS.map(([name, label]) => h("label", {}, label, inputs[name])),
    h("button", { type: "submit" }, "Search"));
  view.replaceChildren(h("h2", {}, "History"), form,
    h("table", { "aria-label": "Calls" },
      h("thead", {}, h("tr", {}, ["Started", "Caller", "Dialled", "Agent", "Provider", "Outcome"]
        .map((t) => h("th", {}, t)), ["Duration", "Cost"].map((t) => h("th", { class: "num" }, t)))),
      body), more);

  let cursor = null;
  const load = async (append) => {
    const query = new URLSearchParams({ limit: "50" });
    for (const [name, , type] of FILTERS) {
      const value = inputs[name].value.trim();
      if (value) query.set(name, type === "datetime-local" ? new Date(value).toISOString() : value);
    }
    if (append && cursor) query.set("cursor", cursor);
    try {
      const page = await api(`/v1/calls?${query}`, { signal });
      const rows = page.items.map((c) => h("tr", { "data-call-id": c.id },
        h("td", {}, h("a", { href: `#/calls/${c.id}` }, when(c.created_at))),
        h("td", {}, c.from_number ?? "–"), h("td", {}, c.to_number ?? "–"),
        h("td", {}, c.agent ?? "–"), h("td", {}, c.provider ?? "–"),
        h("td", {}, c.end_reason ?? c.status),
        h("td", { class: "num" }, seconds(c.duration_s)), h("td", { class: "num" }, usd(c.cost_total))));
      if (append) body.append(...rows);
      else body.replaceChildren(...(rows.length ? rows
        : [h("tr", {}, h("td", { colspan: 8, class: "empty" }, "No calls match."))]));
      cursor = page.next_cursor;
      more.hidden = !cursor;
      status("");
    } catch (error) {
      if (!signal.aborted) status(`Cannot list calls: ${error.message}`, true);
    }
  };
  form.addEventListener("submit", (e) => { e.preventDefault(); load(false); }, { signal });
  more.addEventListener("click", () => load(true), { signal });
  load(false);
}
