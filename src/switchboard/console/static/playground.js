// "Playground": talk to an agent from this browser's microphone over WS /v1/stream, with the
// live transcript and each turn's latency (from the end of your speech, as the provider
// reported it, to the first audio of the answer reaching this page).
import { api } from "./api.js";
import { audioSocket } from "./audio.js";
import { h, ms, status } from "./format.js";
import { latencyChart } from "./chart.js";

export async function showPlayground(view, signal) {
  const agent = h("select", { name: "agent", "aria-label": "Agent" });
  const provider = h("select", { name: "provider", "aria-label": "Provider" }, h("option", { value: "" }, "the agent's"));
  const transcript = h("ol", { class: "transcript", "aria-label": "Playground transcript" });
  const chart = h("div");
  const last = h("output", { "aria-label": "Last turn latency" }, "–");
  const meter = h("meter", { min: 0, max: 0.3, value: 0, "aria-label": "Agent audio level" });
  const button = h("button", { type: "submit" }, "Start talking");
  view.replaceChildren(h("h2", {}, "Playground"),
    h("p", {}, "Talk to an agent with this browser's microphone (nothing is dialled)."),
    h("form", { class: "inline", "aria-label": "Playground" },
      h("label", {}, "Agent", agent), h("label", {}, "Provider", provider), button, meter),
    h("div", { class: "call-grid" },
      h("section", {}, h("h3", {}, "Transcript"), transcript),
      h("section", {}, h("h3", {}, "Turn latency"), h("p", {}, "Last: ", last), chart)));
  try {
    const [agents, providers] = await Promise.all([api("/v1/agents", { signal }),
      api("/v1/providers", { signal })]);
    agent.replaceChildren(...agents.map((a) => h("option", { value: a.name }, a.name)));
    provider.append(...providers.filter((p) => p.configured)
      .map((p) => h("option", { value: p.name }, p.display_name ?? p.name)));
  } catch (error) {
    if (!signal.aborted) status(`Cannot read the agents: ${error.message}`, true);
  }

  const lines = [];
  const partial = { caller: "", agent: "" };
  const latencies = [];
  let stoppedAt = null;
  const render = () => {
    const item = (role, text, cls = role) => h("li", { class: cls },
      h("span", { class: "role" }, role === "agent" ? "Agent" : "You"), h("span", { class: "text" }, text));
    transcript.replaceChildren(...lines.map((l) => item(l.role, l.text)),
      ...["caller", "agent"].filter((r) => partial[r]).map((r) => item(r, partial[r], `${r} partial`)));
    chart.replaceChildren(latencyChart(latencies));
  };
  const settle = (role, text) => {
    const said = (text ?? partial[role]).trim();
    partial[role] = "";
    if (said) lines.push({ role, text: said });
  };
  const onText = (msg) => {
    switch (msg.type) {
      case "started": status(`talking to ${agent.value} (${msg.provider})`); break;
      case "error": status(`playground: ${msg.message}`, true); break;
      case "speech.stopped": stoppedAt = performance.now(); break;
      case "caller.transcript":
        if (msg.final) settle("caller", msg.text); else partial.caller = msg.text;
        break;
      case "text.output":
        if (msg.final) settle("agent", msg.text); else partial.agent += msg.text;
        break;
      case "response.done": settle("agent"); break;
      default: return;
    }
    render();
  };
  const onAudio = () => {
    if (stoppedAt === null) return;
    const latency = performance.now() - stoppedAt;
    stoppedAt = null;
    latencies.push({ turn: latencies.length + 1, latency_ms: latency });
    last.textContent = ms(latency);
    render();
  };

  let session = null;
  const stop = () => { session?.close(); session = null; button.textContent = "Start talking"; };
  signal.addEventListener("abort", stop);
  button.closest("form").addEventListener("submit", async (event) => {
    event.preventDefault();
    if (session) { stop(); return; }
    try {
      session = await audioSocket("/v1/stream", { name: "playground", mic: true, onText, onAudio,
        start: { type: "start", agent: agent.value, provider: provider.value || null,
          sample_rate: 16000 },
        onLevel: (rms) => { meter.value = rms; },
        onClose: () => { session = null; button.textContent = "Start talking"; } });
      button.textContent = "Stop";
    } catch (error) { status(`playground: ${error.message}`, true); }
  });
  render();
}
