// Sonic explorer: drawing on canvases (colour maps, images of 0-255 rows, the waveform).
// Loaded before app.js; plain functions and constants, no state and no requests.
"use strict";

// ------------------------------------------------------------------------------ colour maps
// 11 evenly spaced stops of matplotlib's perceptual maps, interpolated to 256-entry tables.
const VIRIDIS_STOPS = ["#440154", "#482475", "#414487", "#355f8d", "#2a788e", "#21918c",
  "#22a884", "#44bf70", "#7ad151", "#bddf26", "#fde725"];
const MAGMA_STOPS = ["#000004", "#140e36", "#3b0f70", "#641a80", "#8c2981", "#b73779",
  "#de4968", "#f7705c", "#fe9f6d", "#fecf92", "#fcfdbf"];

// Okabe–Ito colours (distinguishable with colour-blindness), one per class, in class order.
const CLASS_COLOURS = ["#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00",
  "#f0e442", "#000000"];

/** A Uint8ClampedArray of 256 × RGB, linearly interpolated between hex colour stops. */
function colourTable(stops) {
  const rgb = stops.map((hex) => [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16)));
  const table = new Uint8ClampedArray(256 * 3);
  for (let v = 0; v < 256; v++) {
    const pos = (v / 255) * (rgb.length - 1);
    const i = Math.min(Math.floor(pos), rgb.length - 2);
    const t = pos - i;
    for (let c = 0; c < 3; c++) table[v * 3 + c] = rgb[i][c] + t * (rgb[i + 1][c] - rgb[i][c]);
  }
  return table;
}

const VIRIDIS = colourTable(VIRIDIS_STOPS);
const MAGMA = colourTable(MAGMA_STOPS);

/**
 * Draw rows of 0-255 integers through a colour table onto `canvas`, scaled to its size.
 * `bottomUp`: row 0 is drawn at the bottom (mel band 0 = lowest frequency). `fit`: the canvas
 * takes the image's own size (feature maps, scaled by CSS) instead of keeping its own.
 */
function drawRows(canvas, rows, table, { bottomUp = false, fit = false } = {}) {
  const h = rows.length;
  const w = h ? rows[0].length : 0;
  if (!w) return;
  const image = new ImageData(w, h);
  rows.forEach((row, r) => {
    const y = bottomUp ? h - 1 - r : r;
    row.forEach((v, x) => {
      const o = (y * w + x) * 4;
      image.data.set(table.subarray(v * 3, v * 3 + 3), o);
      image.data[o + 3] = 255;
    });
  });
  if (fit) {
    canvas.width = w;
    canvas.height = h;
    canvas.getContext("2d").putImageData(image, 0, 0);
    return;
  }
  const native = document.createElement("canvas");
  native.width = w;
  native.height = h;
  native.getContext("2d").putImageData(image, 0, 0);
  const ctx = canvas.getContext("2d");
  ctx.imageSmoothingEnabled = false;  // show the model's bins as they are
  ctx.drawImage(native, 0, 0, canvas.width, canvas.height);
}

/** The largest absolute sample value of a min/max envelope (0 for silence). */
function envelopePeak(envelope) {
  return Math.max(0, ...envelope.max, ...envelope.min.map((v) => -v));
}

/**
 * The min/max envelope of the whole file scaled to its peak (quiet files stay visible), the
 * inspected window shaded, and the play position. envelope: {min, max} in [-1, 1]; times in s.
 */
function drawWaveform(canvas, envelope, duration, span, playhead) {
  const ctx = canvas.getContext("2d");
  const { width: w, height: h } = canvas;
  ctx.fillStyle = "#f4f5f8";
  ctx.fillRect(0, 0, w, h);
  if (span && duration > 0) {
    ctx.fillStyle = "rgba(0, 114, 178, 0.15)";
    ctx.fillRect((span.start_s / duration) * w, 0, ((span.end_s - span.start_s) / duration) * w, h);
  }
  const n = envelope.min.length;
  const gain = 1 / (envelopePeak(envelope) || 1);
  const y = (v) => h / 2 - v * gain * (h / 2 - 4);
  ctx.fillStyle = "#24324a";
  for (let i = 0; i < n; i++) {
    const x = Math.floor((i / n) * w);
    const top = y(envelope.max[i]);
    ctx.fillRect(x, top, Math.max(1, Math.ceil(w / n)), Math.max(1, y(envelope.min[i]) - top));
  }
  if (span && duration > 0) {  // the window's edges stay visible over a loud waveform too
    ctx.fillStyle = "#0072b2";
    ctx.fillRect((span.start_s / duration) * w, 0, 3, h);
    ctx.fillRect((span.end_s / duration) * w - 3, 0, 3, h);
  }
  if (playhead > 0 && duration > 0) {
    ctx.fillStyle = "#d55e00";
    ctx.fillRect((playhead / duration) * w - 1, 0, 2, h);
  }
}
