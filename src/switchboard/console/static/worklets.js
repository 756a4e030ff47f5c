// AudioWorklet processors (loaded with audioWorklet.addModule): the console's audio runs here,
// off the page's main thread, at the AudioContext's rate (16 kHz, the server's rate).

// "pcm-player": plays Float32 chunks posted to its port. A short jitter buffer (60 ms) before
// it starts; more than 300 ms queued and the oldest is dropped, so playback stays close to the
// call. Every ~100 ms it posts {rms, queuedMs} of what it played (the level meter; tests).
class PcmPlayer extends AudioWorkletProcessor {
  constructor() {
    super();
    this.chunks = [];
    this.queued = 0;
    this.offset = 0;
    this.started = false;
    this.sum = 0;
    this.count = 0;
    this.port.onmessage = (event) => {
      const chunk = event.data;
      this.chunks.push(chunk);
      this.queued += chunk.length;
      const max = sampleRate * 0.3;
      while (this.queued - this.offset > max && this.chunks.length > 1) {
        this.queued -= this.chunks.shift().length;
      }
    };
  }

  process(_inputs, outputs) {
    const out = outputs[0][0];
    if (!this.started && this.queued - this.offset >= sampleRate * 0.06) this.started = true;
    let i = 0;
    while (this.started && i < out.length && this.chunks.length) {
      const chunk = this.chunks[0];
      const n = Math.min(out.length - i, chunk.length - this.offset);
      out.set(chunk.subarray(this.offset, this.offset + n), i);
      i += n;
      this.offset += n;
      if (this.offset >= chunk.length) {
        this.chunks.shift();
        this.queued -= chunk.length;
        this.offset = 0;
      }
    }
    if (i < out.length) { out.fill(0, i); if (!this.chunks.length) this.started = false; }
    for (let k = 0; k < out.length; k++) this.sum += out[k] * out[k];
    this.count += out.length;
    if (this.count >= sampleRate / 10) {
      this.port.postMessage({ rms: Math.sqrt(this.sum / this.count),
        queuedMs: (1000 * (this.queued - this.offset)) / sampleRate });
      this.sum = 0;
      this.count = 0;
    }
    return true;
  }
}

// "pcm-capture": posts the microphone's samples in 20 ms Float32 chunks.
class PcmCapture extends AudioWorkletProcessor {
  constructor() {
    super();
    this.size = Math.round(sampleRate / 50);
    this.buffer = new Float32Array(this.size);
    this.filled = 0;
  }

  process(inputs) {
    const input = inputs[0][0];
    if (!input) return true;
    let i = 0;
    while (i < input.length) {
      const n = Math.min(input.length - i, this.size - this.filled);
      this.buffer.set(input.subarray(i, i + n), this.filled);
      this.filled += n;
      i += n;
      if (this.filled === this.size) {
        this.port.postMessage(this.buffer.slice());
        this.filled = 0;
      }
    }
    return true;
  }
}

registerProcessor("pcm-player", PcmPlayer);
registerProcessor("pcm-capture", PcmCapture);
