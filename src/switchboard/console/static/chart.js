// The per-turn latency chart: inline SVG bars, one per turn, with the value above each.
const NS = "http://www.w3.org/2000/svg";

function el(tag, attrs, text) {
  const node = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

/** An SVG chart of `latencies` ([{turn, latency_ms}]). */
export function latencyChart(latencies) {
  const width = 480, height = 140, pad = 18;
  const svg = el("svg", { class: "latency", viewBox: `0 0 ${width} ${height}`, role: "img",
    "aria-label": "Turn latency" });
  if (!latencies.length) {
    svg.append(el("text", { x: pad, y: height / 2 }, "No turns yet."));
    return svg;
  }
  const top = Math.max(...latencies.map((l) => l.latency_ms), 1);
  const slot = (width - 2 * pad) / Math.max(latencies.length, 8);
  latencies.forEach((l, i) => {
    const barH = ((height - 2 * pad) * l.latency_ms) / top;
    const x = pad + i * slot;
    const bar = el("rect", { x: x + 2, y: height - pad - barH, width: slot - 4, height: barH });
    bar.append(el("title", {}, `turn ${l.turn}: ${Math.round(l.latency_ms)} ms`));
    svg.append(bar,
      el("text", { x: x + 2, y: height - pad - barH - 3 }, `${Math.round(l.latency_ms)}`),
      el("text", { x: x + 2, y: height - 4 }, `#${l.turn}`));
  });
  return svg;
}
