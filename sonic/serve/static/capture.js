// Sonic explorer: the microphone's AudioWorklet (loaded by app.js with audioWorklet.addModule).
// Mixes the input to mono, converts it to 16-bit PCM and hands it to the page in chunks of
// `processorOptions.chunk` frames at the AudioContext's rate; the page sends each chunk to the
// server (/api/live), which resamples it to the models' rate. With each chunk: its peak and the
// index of its first sample at or above LOUD (-1 if none), for the page's latency record.
"use strict";

const LOUD = 0.05;  // -26 dBFS: where a sound counts as started in the latency record

class PcmCapture extends AudioWorkletProcessor {
  constructor(options) {
    super();
    this.size = options.processorOptions.chunk;
    this.reset();
  }

  reset() {
    this.pcm = new Int16Array(this.size);
    this.fill = 0;
    this.peak = 0;
    this.loud = -1;
  }

  process(inputs) {
    const channels = inputs[0];
    if (!channels || !channels.length) return true;
    for (let i = 0; i < channels[0].length; i++) {
      let x = 0;
      for (const channel of channels) x += channel[i];
      x /= channels.length;
      const level = Math.abs(x);
      if (level > this.peak) this.peak = level;
      if (this.loud < 0 && level >= LOUD) this.loud = this.fill;
      this.pcm[this.fill++] = Math.max(-32768, Math.min(32767, Math.round(x * 32768)));
      if (this.fill === this.size) {
        this.port.postMessage({ pcm: this.pcm.buffer, peak: this.peak, loud: this.loud },
          [this.pcm.buffer]);
        this.reset();
      }
    }
    return true;
  }
}

registerProcessor("pcm-capture", PcmCapture);
