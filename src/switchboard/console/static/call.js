// One call: transcript, timeline, per-turn latency and cost — live from the event stream while
// the call runs, from the record after; and the operator's controls while it is live. A
// recorded call has a plain <audio> player (left: the caller, right: what the caller heard).
import { api, blobUrl, follow } from "./api.js";
import { h, ms, seconds, status, usd, when } from "./format.js";
import { latencyChart } from "./chart.js";
import { audioSocket } from "./audio.js";

export function showCall(view, callId, signal) {
  const state = { live: false, summary: null, transcript: [], timeline: [], latencies: [],
    record: null, partial: {} };
  const facts = h("dl", { class: "facts", "aria-label": "Call facts" });
  const transcript = h("ol", { class: "transcript", "aria-label": "Transcript" });
  const timeline = h("ol", { class: "timeline", "aria-label": "Timeline" });
  const chart = h("div");
  const cost = h("output", { "aria-label": "Cost" }, "–");
  const controls = h("section", { "aria-label": "Call controls" });
  const recording = h("section", { "aria-label": "Recording", hidden: true });
  view.replaceChildren(
    h("h2", {}, `Call ${callId}`),
    h("div", { class: "call-grid" },
      h("section", {}, h("h3", {}, "Transcript"), transcript, recording),
      h("section", {}, h("h3", {}, "Call"), facts, h("p", {}, "Cost: ", cost), controls,
        h("h3", {}, "Turn latency"), chart, h("h3", {}, "Timeline"), timeline)));

  const fact = (k, v) => [h("dt", {}, k), h("dd", {}, v ?? "–")];
  const render = () => {
    const s = state.summary ?? {};
    const r = state.record ?? {};
    facts.replaceChildren(
      ...fact("Status", state.live ? s.status ?? "live" : r.status),
      ...fact("Caller", s.from ?? r.from_number), ...fact("Dialled", s.to ?? r.to_number),
      ...fact("Agent", s.agent ?? r.agent), ...fact("Provider", s.provider ?? r.provider),
      ...fact("Carrier", s.carrier ?? r.carrier),
      ...fact("Duration", state.live ? seconds(Date.now() / 1000 - s.started_at)
        : seconds(r.duration_s)),
      ...(state.live ? [] : fact("Ended", `${when(r.ended_at)} (${r.end_reason ?? "–"})`)),
      ...warmFact(state.timeline));
    cost.textContent = state.live ? usd(s.cost_usd) : usd(r.cost_total);
    transcript.replaceChildren(...state.transcript.map((t) =>
      h("li", { class: `${t.role}${t.interrupted ? " interrupted" : ""}` },
        h("span", { class: "role" }, t.role === "agent" ? "Agent" : "Caller"),
        h("span", { class: "text" }, t.text))),
      ...Object.entries(state.live ? state.partial : {}).filter(([, text]) => text).map(
        ([role, text]) => h("li", { class: `${role} partial`, "aria-label": `${role} speaking` },
          h("span", { class: "role" }, role === "agent" ? "Agent" : "Caller"),
          h("span", { class: "text" }, text))));
    transcript.scrollTop = transcript.scrollHeight;
    timeline.replaceChildren(...state.timeline.map((e) => h("li", {},
      h("span", { class: "t" }, `${(e.t_ms / 1000).toFixed(1)} s`), e.kind, " ",
      Object.keys(e.data ?? {}).length ? h("code", {}, JSON.stringify(e.data)) : "")));
    chart.replaceChildren(latencyChart(state.latencies));
    controls.hidden = !state.live;
    if (!state.live) audio.stop();
  };

  const apply = (type, event) => {
    const d = event.data;
    if (type === "transcript") { state.transcript.push(d); state.partial[d.role] = ""; }
    else if (type === "transcript.partial") state.partial[d.role] = d.text;
    else if (type === "timeline") state.timeline.push(d);
    else if (type === "turn.latency") state.latencies.push(d);
    else if (type === "call.updated") Object.assign(state.summary ?? {}, d);
  };

  const loadRecord = async () => {
    try {
      const record = await api(`/v1/calls/${encodeURIComponent(callId)}`, { signal });
      state.record = record;
      state.transcript = record.transcript;
      state.timeline = [...record.timeline,
        ...record.tool_calls.map((t) => ({ kind: "tool.call", t_ms: null, data: t }))]
        .sort((a, b) => (a.t_ms ?? 0) - (b.t_ms ?? 0));
      state.latencies = record.latencies;
      render();
      showRecording(record.recording_url);
    } catch (error) {
      if (!signal.aborted) status(`Cannot read the call: ${error.message}`, true);
    }
  };

  let shown = null; // the recording URL the player holds
  const showRecording = async (url) => {
    if (!url || url === shown) return;
    shown = url;
    try {
      // same-origin path of the API's URL (SWITCHBOARD_PUBLIC_URL may name another host)
      const src = await blobUrl(new URL(url, location.href).pathname, { signal });
      signal.addEventListener("abort", () => URL.revokeObjectURL(src));
      recording.replaceChildren(h("h3", {}, "Recording"),
        h("audio", { controls: true, preload: "metadata", src, "aria-label": "Call recording" }),
        h("p", { class: "hint" }, "Left: the caller. Right: what the caller heard."));
      recording.hidden = false;
    } catch (error) {
      if (!signal.aborted) status(`Cannot load the recording: ${error.message}`, true);
    }
  };

  const audio = callAudio(callId, signal);
  controls.append(...operatorControls(callId, signal), ...audio.controls);
  render();
  const tick = setInterval(() => { if (state.live) render(); }, 1000);
  signal.addEventListener("abort", () => clearInterval(tick));

  follow(callId, (type, event) => {
    if (type === "snapshot") {
      state.summary = event.calls.find((c) => c.call_id === callId) ?? null;
      state.live = state.summary !== null;
      if (!state.live) { loadRecord(); return; }
      state.transcript = []; state.timeline = []; state.latencies = [];
      for (const e of event.events) apply(e.type, e);
    } else if (type === "call.ended") {
      state.live = false;
      loadRecord(); // the record, final: cost, end reason
      return;
    } else apply(type, event);
    render();
  }, signal);
}

// A warm transfer's progress, from its timeline entries (bridge/warm_transfer.py): the
// "Warm transfer" fact shows the latest step, or nothing when the call had none.
const WARM_STEPS = {
  "transfer.warm.started": (d) => `dialling ${d.to} (caller on hold)`,
  "transfer.warm.briefing": () => "briefing the person who answered",
  "transfer.warm.error": (d) => `carrier error: ${d.error}`,
  "transfer.warm.failed": (d) => `did not go through (${d.reason}): caller back with the agent`,
  "call.transferred": (d) => (d.mode === "warm" ? `joined with ${d.to}` : null),
};

function warmFact(timeline) {
  let step = null;
  for (const e of timeline) {
    const text = WARM_STEPS[e.kind]?.(e.data ?? {});
    if (text) step = text;
  }
  return step === null ? [] : [h("dt", {}, "Warm transfer"),
    h("dd", { "aria-label": "Warm transfer" }, step)];
}

async function act(callId, action, body, signal) {
  try {
    const answer = await api(`/v1/calls/${encodeURIComponent(callId)}/${action}`,
      { method: "POST", body, signal });
    status(`${action}: ${answer?.status === "transferring" ? "under way" : "done"}`);
    return true;
  } catch (error) {
    status(`${action}: ${error.message}`, true);
    return false;
  }
}

function operatorControls(callId, signal) {
  const act_ = (action, body) => act(callId, action, body, signal);
  const sayText = h("input", { name: "say", "aria-label": "Text to say", maxlength: 2000 });
  const whisperText = h("input", { name: "whisper", "aria-label": "Text to whisper",
    maxlength: 2000, placeholder: "the caller does not hear it" });
  const respond = h("input", { type: "checkbox", name: "respond" });
  const destination = h("input", { name: "destination", "aria-label": "Transfer to",
    placeholder: "name or +number" });
  // cold: hand the caller over now; warm: hold, dial, brief whoever answers, then join
  const mode = h("select", { name: "mode", "aria-label": "Transfer mode" },
    h("option", { value: "cold" }, "cold"), h("option", { value: "warm" }, "warm"));
  return [
    h("form", { class: "inline", onsubmit: (e) => {
      e.preventDefault();
      if (sayText.value.trim()) act_("say", { text: sayText.value.trim() }).then(() => { sayText.value = ""; });
    } }, sayText, h("button", { type: "submit" }, "Say")),
    h("form", { class: "inline", onsubmit: (e) => {
      e.preventDefault();
      if (whisperText.value.trim()) {
        act_("whisper", { text: whisperText.value.trim(), respond: respond.checked })
          .then(() => { whisperText.value = ""; });
      }
    } }, whisperText, h("button", { type: "submit" }, "Whisper"),
    h("label", { class: "check" }, respond, "act on it now")),
    h("form", { class: "inline", onsubmit: (e) => {
      e.preventDefault();
      if (!destination.value.trim()) return;
      const body = { destination: destination.value.trim() };
      if (mode.value === "warm") body.mode = "warm";
      act_("transfer", body);
    } }, destination, mode, h("button", { type: "submit" }, "Transfer")),
    h("p", {}, h("button", { type: "button", class: "danger", onclick: () => act_("hangup") },
      "Hang up")),
  ];
}

// "Listen" (both sides, mixed) and "Take over" / "Hand back" (the microphone to the caller,
// the caller to the operator), each over its websocket and played through an AudioWorklet.
function callAudio(callId, signal) {
  const id = encodeURIComponent(callId);
  const meter = h("meter", { min: 0, max: 0.3, value: 0, "aria-label": "Call audio level" });
  let listening = null;
  let operating = null;
  const listen = h("button", { type: "button", "aria-pressed": "false", onclick: async () => {
    if (listening) { listening.close(); return; }
    try {
      listening = await audioSocket(`/v1/calls/${id}/listen`, { name: "listen",
        onLevel: (rms) => { meter.value = rms; },
        onClose: () => { listening = null; listen.setAttribute("aria-pressed", "false"); } });
      listen.setAttribute("aria-pressed", "true");
      status("listening");
    } catch (error) { status(`listen: ${error.message}`, true); }
  } }, "Listen");
  const takeOver = h("button", { type: "button", onclick: async () => {
    if (operating) {
      if (await act(callId, "handback", undefined, signal)) {
        operating.close();
        operating = null;
        takeOver.textContent = "Take over";
      }
      return;
    }
    if (!(await act(callId, "takeover", undefined, signal))) return;
    try {
      operating = await audioSocket(`/v1/calls/${id}/operator`, { name: "operator", mic: true,
        onLevel: (rms) => { meter.value = rms; } });
      takeOver.textContent = "Hand back";
    } catch (error) { // no microphone: give the call back rather than leave it silent
      status(`take over: ${error.message}`, true);
      await act(callId, "handback", undefined, signal);
    }
  } }, "Take over");
  const stop = () => { listening?.close(); operating?.close(); listening = operating = null; };
  signal.addEventListener("abort", stop);
  return { controls: [h("p", { class: "inline" }, listen, " ", takeOver, " ", meter)], stop };
}
