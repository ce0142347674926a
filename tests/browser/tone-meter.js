// AudioWorklet processor `tone-meter`: measures what a call receives, sample
// by sample. Every 20 ms (960 samples at 48 kHz) it takes the last 40 ms
// through a Hann window and posts { level_db, powers } to the page: the
// window's mean power in dBFS and, for each frequency it was told to watch
// (processorOptions.freqs, or a later { freqs } message), the share of that
// power which is a sine at that frequency (Goertzel at the exact frequency:
// about 1 for a clean tone, about 0 when it is absent). The page turns these
// blocks into tone presence and DTMF digits.

const WINDOW = 1920;
const HOP = 960;

class ToneMeter extends AudioWorkletProcessor {
  constructor(options) {
    super();
    this.freqs = (options.processorOptions && options.processorOptions.freqs) || [];
    this.ring = new Float32Array(WINDOW);
    this.next = 0; // where the next sample goes: the oldest one
    this.filled = 0;
    this.sinceHop = 0;
    this.hann = new Float32Array(WINDOW);
    let sum = 0;
    let sumSq = 0;
    for (let n = 0; n < WINDOW; n++) {
      const w = 0.5 - 0.5 * Math.cos((2 * Math.PI * n) / (WINDOW - 1));
      this.hann[n] = w;
      sum += w;
      sumSq += w * w;
    }
    this.windowSum = sum;
    this.windowSumSq = sumSq;
    this.port.onmessage = (e) => {
      if (Array.isArray(e.data.freqs)) this.freqs = e.data.freqs.slice();
    };
  }

  process(inputs) {
    const input = inputs[0];
    if (!input || input.length === 0) return true;
    const samples = input[0];
    for (let i = 0; i < samples.length; i++) {
      this.ring[this.next] = samples[i];
      this.next = (this.next + 1) % WINDOW;
    }
    this.filled = Math.min(WINDOW, this.filled + samples.length);
    this.sinceHop += samples.length;
    if (this.sinceHop >= HOP && this.filled === WINDOW) {
      this.sinceHop = 0;
      this.port.postMessage(this.analyse());
    }
    return true;
  }

  analyse() {
    // The window in time order, oldest sample first.
    const x = new Float32Array(WINDOW);
    x.set(this.ring.subarray(this.next), 0);
    x.set(this.ring.subarray(0, this.next), WINDOW - this.next);
    const w = this.hann;
    let energy = 0;
    for (let n = 0; n < WINDOW; n++) energy += w[n] * w[n] * x[n] * x[n];
    const power = energy / this.windowSumSq;
    const powers = this.freqs.map((f) => {
      const omega = (2 * Math.PI * f) / sampleRate;
      const coeff = 2 * Math.cos(omega);
      let s1 = 0;
      let s2 = 0;
      for (let n = 0; n < WINDOW; n++) {
        const s0 = w[n] * x[n] + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
      }
      const re = s1 - s2 * Math.cos(omega);
      const im = s2 * Math.sin(omega);
      const amp = Math.sqrt(re * re + im * im) / this.windowSum;
      // A sine of amplitude A: amp = A / 2, its power A^2 / 2 = 2 amp^2.
      return power > 0 ? Math.min(1, (2 * amp * amp) / power) : 0;
    });
    return { level_db: power > 0 ? 10 * Math.log10(power) : -200, powers };
  }
}

registerProcessor('tone-meter', ToneMeter);
