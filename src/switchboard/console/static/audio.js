// The console's audio: a call's sound played through an AudioWorklet, the microphone captured
// through another, both as PCM16 16 kHz over websockets (the token goes in ?token=, since a
// browser cannot set a websocket's headers). Levels (RMS) are kept in `audioLevels` — the
// meters show them and the browser tests read them.
import { token } from "./api.js";

export const RATE = 16000;
/** The RMS levels each player posted (name -> numbers), newest last. */
export const audioLevels = {};
/** The most audio (ms) each player has held unplayed: how far behind the call it plays. */
export const audioQueued = {};
window.switchboardAudio = { levels: audioLevels, queued: audioQueued };

/** A websocket URL for `path` on this server, with the API token. */
export function socketUrl(path) {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const sep = path.includes("?") ? "&" : "?";
  return `${scheme}://${location.host}${path}${sep}token=${encodeURIComponent(token())}`;
}

async function audioContext() {
  const ctx = new AudioContext({ sampleRate: RATE, latencyHint: "interactive" });
  await ctx.audioWorklet.addModule("static/worklets.js");
  if (ctx.state === "suspended") await ctx.resume();
  return ctx;
}

const toFloat = (buffer) => {
  const pcm = new Int16Array(buffer);
  const out = new Float32Array(pcm.length);
  for (let i = 0; i < pcm.length; i++) out[i] = pcm[i] / 32768;
  return out;
};

const toPcm16 = (samples) => {
  const out = new Int16Array(samples.length);
  for (let i = 0; i < samples.length; i++) {
    out[i] = Math.max(-32768, Math.min(32767, Math.round(samples[i] * 32767)));
  }
  return out.buffer;
};

/**
 * A websocket whose binary frames (PCM16 16 kHz) are played; with `mic`, the microphone's
 * audio is sent on it (after `start`, a JSON message, if given). `onLevel(rms)` gets the
 * played level, `onText(msg)` its JSON messages, `onAudio()` a call per binary frame.
 * Returns {socket, close()}.
 */
export async function audioSocket(path, { name, mic = false, onLevel, onText, onAudio,
  onClose, start } = {}) {
  const ctx = await audioContext();
  const player = new AudioWorkletNode(ctx, "pcm-player");
  player.connect(ctx.destination);
  const levels = (audioLevels[name] = []);
  player.port.onmessage = (event) => {
    levels.push(event.data.rms);
    audioQueued[name] = Math.max(audioQueued[name] ?? 0, event.data.queuedMs);
    if (levels.length > 600) levels.shift();
    onLevel?.(event.data.rms);
  };
  let stream = null;
  const socket = new WebSocket(socketUrl(path));
  socket.binaryType = "arraybuffer";
  socket.onmessage = (event) => {
    if (typeof event.data === "string") onText?.(JSON.parse(event.data));
    else { onAudio?.(); player.port.postMessage(toFloat(event.data)); }
  };
  const close = () => {
    stream?.getTracks().forEach((t) => t.stop());
    if (socket.readyState <= WebSocket.OPEN) socket.close(1000);
    ctx.close();
  };
  socket.onclose = () => { close(); onClose?.(); };
  // A call's socket is ready at the server's first message ("started"; a call held by another
  // node is relayed by the node we reached): a refusal is accepted and closed with its reason.
  // A socket we open with a start message (/v1/stream) hears nothing before sending it.
  await new Promise((resolve, reject) => {
    socket.addEventListener(start ? "open" : "message", resolve, { once: true });
    socket.addEventListener("close",
      (event) => reject(new Error(event.reason || "the socket closed")), { once: true });
  });
  if (start) socket.send(JSON.stringify(start));
  if (mic) {
    stream = await navigator.mediaDevices.getUserMedia({
      audio: { echoCancellation: true, noiseSuppression: false, autoGainControl: false,
        channelCount: 1 } });
    const capture = new AudioWorkletNode(ctx, "pcm-capture");
    capture.port.onmessage = (event) => {
      if (socket.readyState === WebSocket.OPEN) socket.send(toPcm16(event.data));
    };
    const mute = ctx.createGain(); // pulled by the destination, so the capture runs; silent
    mute.gain.value = 0;
    ctx.createMediaStreamSource(stream).connect(capture).connect(mute).connect(ctx.destination);
  }
  return { socket, close };
}
