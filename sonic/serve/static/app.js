// Sonic explorer: the page served at `/` by `sonic serve`. Plain ES2020, no modules, no build
// step, nothing from the network but this server's own /api routes.
//
// Flow for a file: play it at once (object URL) → POST /api/predict → show the top-3 and the
// window timeline → POST /api/inspect for one window → waveform, log-mel and feature maps.
// The prediction comes first because it is what the user waits for; inspect is slower (feature
// maps of every layer) and only adds detail. Choosing a window re-requests only inspect. The
// prediction asks for events too: one lane per detected class, a click inspects that moment.
//
// Listening: getUserMedia → an AudioWorklet (capture.js) → 16-bit PCM chunks → WebSocket
// /api/live → every hop the server's top-3 and events of the last minute, shown as they come.
//
// A server started with a token answers 401: the page asks for it, keeps it in this tab's
// sessionStorage and sends it as "Authorization: Bearer" (and as ?token= on the WebSocket).
"use strict";

// ------------------------------------------------------------------------------------ state
const $ = (id) => document.getElementById(id);

/** A new element with an optional class and text. */
function el(tag, className = "", text = "") {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text) node.textContent = text;
  return node;
}

const state = {
  info: null,          // GET /api/models
  file: null,          // the File being explored
  fileUrl: null,       // its object URL (revoked when replaced)
  prediction: null,    // POST /api/predict for `file`
  inspected: null,     // POST /api/inspect for the shown window
  predictAbort: null,  // AbortControllers of the requests in flight
  inspectAbort: null,
  genUrl: null,        // object URL of the generated WAV
  genFile: null,       // the generated WAV as a File, to classify it
  live: null,          // the microphone, worklet and socket while listening (startLive)
  // Listening's record, for its lag and for `python -m sonic.bench --live`: "chunk" entries
  // (capture time, samples sent so far, first loud sample) and "shown" ones (label on screen).
  liveLog: [],
};

const TOKEN_KEY = "sonic-token";  // sessionStorage: forgotten when the tab closes
const LIVE_CHUNK_S = 0.02;        // seconds of audio per WebSocket message
const LIVE_VIEW_S = 30;           // seconds of events shown while listening
const LIVE_LOG_MAX = 20000;       // entries kept in state.liveLog

// -------------------------------------------------------------------------------------- API
class ApiError extends Error {}
class TokenError extends ApiError {}  // 401: the server wants a token

function savedToken() {
  return sessionStorage.getItem(TOKEN_KEY) || "";
}

function authHeaders() {
  const token = savedToken();
  return token ? { Authorization: `Bearer ${token}` } : {};
}

/** The server's error text: {"detail": "..."} or FastAPI's list of validation errors. */
function detailText(body, response) {
  const detail = body && body.detail;
  if (typeof detail === "string") return detail;
  if (Array.isArray(detail)) {
    return detail.map((d) => `${(d.loc || []).slice(1).join(".")}: ${d.msg}`).join("; ");
  }
  return `${response.status} ${response.statusText}`;
}

/** Fetch JSON from the API; throws ApiError carrying the server's detail on a 4xx/5xx. */
async function api(path, options = {}) {
  let response;
  try {
    response = await fetch(path, { ...options, headers: { ...authHeaders(), ...options.headers } });
  } catch (err) {
    if (err.name === "AbortError") throw err;
    throw new ApiError(`cannot reach the server (${err.message})`);
  }
  const body = await response.json().catch(() => null);
  if (response.status === 401) {
    askForToken(savedToken() ? "The server refused this token: check it and enter it again."
      : "This server needs an access token: enter it below.");
    throw new TokenError(detailText(body, response));
  }
  if (!response.ok) throw new ApiError(detailText(body, response));
  return body;
}

/** POST the current file as multipart field "file" to an /api route with query parameters. */
function postFile(route, params, signal) {
  const form = new FormData();
  form.append("file", state.file, state.file.name);
  const query = new URLSearchParams(params).toString();
  return api(`${route}?${query}`, { method: "POST", body: form, signal });
}

// ---------------------------------------------------------------------------- status, errors
function setStatus(text) {
  $("status").textContent = text;
}

function showError(text) {
  const alert = $("alert");
  alert.textContent = text;
  alert.hidden = false;
  setStatus("");
}

function clearError() {
  $("alert").hidden = true;
  $("alert").textContent = "";
}

/** Report a failed request unless it was aborted on purpose (a newer one replaced it). */
function reportFailure(err, what) {
  if (err.name === "AbortError" || err instanceof TokenError) return;  // the token form says it
  showError(`${what}: ${err.message}`);
}

/** Show the token form with a message (the alert region says it to screen readers too). */
function askForToken(message) {
  showError(message);
  $("token-form").hidden = false;
  $("token-input").focus();
}

/** Keep the typed token for this tab and load the models again with it. */
async function useToken(event) {
  event.preventDefault();
  const token = $("token-input").value.trim();
  if (!token) return;
  sessionStorage.setItem(TOKEN_KEY, token);
  $("token-input").value = "";
  $("token-form").hidden = true;
  clearError();
  await loadModels();
}

// ---------------------------------------------------------------------------------- drawing
const fmt = (x, digits = 2) => Number(x).toFixed(digits);
const percent = (p) => `${(100 * p).toFixed(1)} %`;
const decibels = (v) => `${Math.round(v)} dB`.replace("-", "\u2212");  // a real minus sign

function classColour(label) {
  const index = state.info ? state.info.classes.indexOf(label) : 0;
  return CLASS_COLOURS[Math.max(index, 0) % CLASS_COLOURS.length];
}

/** The legend under the spectrogram: the colour table from low (left) to high. */
function drawColourBar() {
  const rows = [Array.from({ length: 256 }, (_, v) => v)];
  drawRows($("colour-bar"), rows, VIRIDIS, { fit: true });
}

function redrawWaveform() {
  const result = state.inspected;
  if (!result) return;
  drawWaveform($("waveform"), result.waveform, result.duration_s, result.window, $("player").currentTime);
}

// ----------------------------------------------------------------------- models and settings
/** The model for feature maps: the chosen one, or the first single model for the ensemble. */
function inspectModel() {
  const chosen = $("model-select").value;
  const singles = state.info.models.filter((m) => m.layers.length);
  return singles.some((m) => m.name === chosen) ? chosen : singles[0].name;
}

function describeModel(model) {
  const parts = [model.architecture, `${model.parameters.toLocaleString("en")} parameters`];
  if (typeof model.metrics.val_accuracy === "number") {
    parts.push(`validation accuracy ${fmt(model.metrics.val_accuracy)}`);
  }
  return parts.join(", ");
}

function renderModels(info) {
  const select = $("model-select");
  select.replaceChildren(...info.models.map((m) => new Option(m.name, m.name)));
  select.value = info.default;
  select.disabled = false;
  showModelInfo();
}

function showModelInfo() {
  const model = state.info.models.find((m) => m.name === $("model-select").value);
  $("model-info").textContent = model ? describeModel(model) : "";
}

// ------------------------------------------------------------------------------- prediction
function renderTop3(top, list = $("top3")) {
  const items = top.slice(0, 3).map((entry) => {
    const bar = el("span", "bar");
    bar.setAttribute("aria-hidden", "true");  // the percentage says it in words
    const fill = bar.appendChild(el("span"));
    fill.style.width = `${100 * entry.probability}%`;
    fill.style.background = classColour(entry.label);
    const li = el("li");
    const prob = el("span", "prob", percent(entry.probability));
    li.append(el("span", "label", entry.label), bar, prob);
    return li;
  });
  list.replaceChildren(...items);
}

function renderPredictionInfo(result, ms) {
  const channels = result.channels === 1 ? "mono" : `${result.channels} channels`;
  const windows = result.windows.length;
  $("prediction-info").textContent = `${result.model} · ${fmt(result.duration_s)} s, `
    + `${result.sample_rate} Hz, ${channels} · ${windows} window${windows > 1 ? "s" : ""} of `
    + `${fmt(result.window_s)} s · answered in ${Math.round(ms)} ms`;
}

/** One button per window (time span and top class, coloured by class); hidden for one window. */
function renderTimeline(windows) {
  const buttons = windows.map((win, index) => {
    const best = win.top[0];
    const button = el("button", "", `${fmt(win.start_s)}–${fmt(win.end_s)} s · ${best.label}`);
    button.type = "button";
    button.dataset.index = String(index);
    button.title = `${best.label} ${percent(best.probability)}`;
    button.setAttribute("aria-label", `window ${index + 1}: ${fmt(win.start_s)} to `
      + `${fmt(win.end_s)} seconds, ${best.label} ${percent(best.probability)}`);
    button.setAttribute("aria-pressed", "false");
    button.style.setProperty("--class-colour", classColour(best.label));
    return button;
  });
  $("timeline").replaceChildren(...buttons);
  $("timeline-box").hidden = windows.length < 2;
}

// ------------------------------------------------------------------------------ event lanes
/**
 * One lane per class in `events` (in order of first onset) over the time span [from, to] s: the
 * class name, then its events placed on the span. With `pickable`, events are buttons.
 */
function renderLanes(container, events, from, to, pickable) {
  const span = Math.max(to - from, 1e-6);
  const pos = (t) => `${(100 * (Math.min(Math.max(t, from), to) - from)) / span}%`;
  const labels = [...new Set(events.map((e) => e.label))];
  const lanes = labels.map((label) => {
    const track = el("div", "lane-track");
    track.style.setProperty("--class-colour", classColour(label));
    for (const e of events.filter((x) => x.label === label && x.offset_s > from)) {
      const segment = el(pickable ? "button" : "span", "event");
      if (pickable) segment.type = "button";
      segment.style.left = pos(e.onset_s);
      segment.style.width = `calc(${pos(e.offset_s)} - ${pos(e.onset_s)})`;
      segment.dataset.onset = String(e.onset_s);
      segment.dataset.offset = String(e.offset_s);
      const words = `${label} from ${fmt(e.onset_s)} to ${fmt(e.offset_s)} s, confidence `
        + `${percent(e.confidence)}`;
      segment.title = words;
      segment.setAttribute("aria-label", words);
      track.append(segment);
    }
    const lane = el("div", "lane");
    lane.dataset.label = label;
    lane.dataset.from = String(from);
    lane.dataset.to = String(to);
    lane.append(el("span", "lane-name", label), track);
    return lane;
  });
  const axis = el("div", "axis");
  axis.append(el("span", "", `${fmt(from, 1)} s`), el("span", "", `${fmt(to, 1)} s`));
  container.replaceChildren(...lanes, ...(lanes.length ? [axis] : []));
}

/** The time (s) a click in a lane points at: an event's middle, or the clicked moment. */
function laneTime(e) {
  const segment = e.target.closest(".event");
  if (segment) return (Number(segment.dataset.onset) + Number(segment.dataset.offset)) / 2;
  const track = e.target.closest(".lane-track");
  if (!track) return null;
  const lane = track.parentElement;
  const from = Number(lane.dataset.from);
  const share = (e.clientX - track.getBoundingClientRect().left) / track.clientWidth;
  return from + Math.min(Math.max(share, 0), 1) * (Number(lane.dataset.to) - from);
}

/** The window whose middle is nearest to `t` seconds. */
function windowAt(t) {
  let best = 0;
  const gap = (w) => Math.abs((w.start_s + w.end_s) / 2 - t);
  state.prediction.windows.forEach((w, i) => { if (gap(w) < gap(state.prediction.windows[best])) best = i; });
  return best;
}

/** Shade the inspected window in every file lane. */
function markLanes(win) {
  for (const lane of $("lanes").querySelectorAll(".lane")) {
    const track = lane.querySelector(".lane-track");
    const from = Number(lane.dataset.from);
    const span = Number(lane.dataset.to) - from;
    let cursor = track.querySelector(".cursor");
    if (!cursor) cursor = track.appendChild(el("span", "cursor"));
    cursor.style.left = `${(100 * ((win.start_s + win.end_s) / 2 - from)) / span}%`;
    cursor.dataset.time = String((win.start_s + win.end_s) / 2);
  }
}

function markWindow(index) {
  for (const button of $("timeline").children) {
    button.setAttribute("aria-pressed", String(Number(button.dataset.index) === index));
  }
}

/** The window that most supports the clip's top class: the first one to inspect. */
function bestWindow(result) {
  const label = result.top[0].label;
  const score = (win) => (win.top.find((t) => t.label === label) || { probability: 0 }).probability;
  let best = 0;
  result.windows.forEach((win, i) => { if (score(win) > score(result.windows[best])) best = i; });
  return best;
}

// ------------------------------------------------------------------------------ inspection
function renderMel(result) {
  const { mel, window: win } = result;
  const [bands, frames] = mel.shape;
  const canvas = $("spectrogram");
  drawRows(canvas, mel.data, VIRIDIS, { bottomUp: true });
  canvas.dataset.windowIndex = String(win.index);
  const what = `window ${win.index + 1} of ${result.n_windows}, ${fmt(win.start_s)}–`
    + `${fmt(win.end_s)} s`;
  const range = `${decibels(mel.db_min)} to ${decibels(mel.db_max)}`;
  canvas.setAttribute("aria-label", `Log-mel spectrogram of ${what}: ${bands} mel bands by `
    + `${frames} frames, ${range}, low frequencies at the bottom`);
  $("mel-info").textContent = `${what} · ${bands} mel bands × ${frames} frames, `
    + `low frequencies at the bottom`;
  $("db-min").textContent = decibels(mel.db_min);
  $("db-max").textContent = decibels(mel.db_max);
}

function layerFigure(layer) {
  const figure = el("figure", "layer");
  figure.dataset.layer = layer.name;
  const caption = el("figcaption");
  caption.append(el("strong", "", layer.name), ` · ${layer.maps.length} of ${layer.channels} `
    + `channels, ${layer.shape[0]} × ${layer.shape[1]}`);
  const grid = el("div", "maps");
  for (const map of layer.maps) {
    const canvas = el("canvas", "fmap");
    canvas.setAttribute("role", "img");
    canvas.setAttribute("aria-label", `${layer.name} channel ${map.channel}, mean activation `
      + `${fmt(map.mean, 3)}`);
    canvas.title = `channel ${map.channel} (mean ${fmt(map.mean, 3)})`;
    drawRows(canvas, map.data, MAGMA, { bottomUp: true, fit: true });
    grid.append(canvas);
  }
  figure.append(caption, grid);
  return figure;
}

function renderLayers(result) {
  const chosen = $("model-select").value;
  const note = chosen === result.model ? "" : ` (${chosen} has no feature maps of its own; `
    + `showing its first model)`;
  $("maps-info").textContent = `${result.model}: the most active channels of each layer, `
    + `strongest first, frequency upwards${note}.`;
  $("feature-maps").replaceChildren(...result.layers.map(layerFigure));
}

function renderInspect(result) {
  state.inspected = result;
  redrawWaveform();
  const peak = envelopePeak(result.waveform);
  const dbfs = peak > 0 ? `, ${decibels(20 * Math.log10(peak))}FS` : "";
  $("wave-info").textContent = `${fmt(result.duration_s)} s, scaled to its peak `
    + `${fmt(peak, 3)}${dbfs}; the inspected window is shaded`;
  $("waveform").setAttribute("aria-label", `Waveform of ${result.file}, `
    + `${fmt(result.duration_s)} s; the inspected window ${fmt(result.window.start_s)}–`
    + `${fmt(result.window.end_s)} s is shaded`);
  renderMel(result);
  renderLayers(result);
  markWindow(result.window.index);
  markLanes(result.window);
}

/** Request the waveform, log-mel and feature maps of one window of the current file. */
async function inspectWindow(index) {
  if (state.inspectAbort) state.inspectAbort.abort();
  const abort = new AbortController();
  state.inspectAbort = abort;
  markWindow(index);
  setStatus(`Inspecting window ${index + 1}…`);
  try {
    const params = { model: inspectModel(), window_index: index, channels: 8 };
    renderInspect(await postFile("/api/inspect", params, abort.signal));
    setStatus(`Showing window ${index + 1} of ${state.file.name}.`);
  } catch (err) {
    reportFailure(err, "Inspecting failed");
  }
}

// -------------------------------------------------------------------------------- one file
function playFile(file) {
  if (state.fileUrl) URL.revokeObjectURL(state.fileUrl);
  state.fileUrl = URL.createObjectURL(file);
  $("player").src = state.fileUrl;
  $("file-info").textContent = `${file.name} · ${(file.size / 1024).toFixed(1)} KiB`;
}

function clearCanvas(canvas) {
  canvas.getContext("2d").clearRect(0, 0, canvas.width, canvas.height);
}

/** Forget the previous file's results, so nothing stale shows beside the new ones. */
function resetResults() {
  clearCanvas($("waveform"));
  clearCanvas($("spectrogram"));
  delete $("spectrogram").dataset.windowIndex;
  state.prediction = null;
  state.inspected = null;
  $("top3").replaceChildren();
  $("timeline").replaceChildren();
  $("timeline-box").hidden = true;
  $("lanes").replaceChildren();
  $("events-box").hidden = true;
  $("feature-maps").replaceChildren();
  $("wave-info").textContent = "";
}

/** Classify the current file, show the top-3 as soon as it arrives, then inspect a window. */
async function analyse() {
  const file = state.file;
  if (!file) return;
  if (state.predictAbort) state.predictAbort.abort();
  if (state.inspectAbort) state.inspectAbort.abort();
  const abort = new AbortController();
  state.predictAbort = abort;
  clearError();
  resetResults();
  setStatus(`Classifying ${file.name}…`);
  const started = performance.now();
  try {
    const result = await postFile("/api/predict",
      { model: $("model-select").value, top_k: 3, events: true }, abort.signal);
    state.prediction = result;
    renderTop3(result.top);
    renderPredictionInfo(result, performance.now() - started);
    renderTimeline(result.windows);
    renderLanes($("lanes"), result.events, 0, result.duration_s, true);
    $("events-box").hidden = result.windows.length < 2 || !result.events.length;
    await inspectWindow(bestWindow(result));
  } catch (err) {
    if (err.name === "AbortError") return;  // a newer file or model replaced this request
    reportFailure(err, "Classifying failed");
    $("prediction-info").textContent = "No prediction.";
  }
}

function chooseFile(file) {
  if (!file || !state.info) return;
  if (file.size > state.info.max_upload_bytes) {
    showError(`${file.name} is ${(file.size / 1e6).toFixed(1)} MB; the server accepts at most `
      + `${(state.info.max_upload_bytes / 1e6).toFixed(1)} MB`);
    return;
  }
  state.file = file;
  playFile(file);
  analyse();
}

// -------------------------------------------------------------------------------- generate
function renderGeneratePanel(generator) {
  const select = $("gen-class");
  const classes = generator.classes.length ? generator.classes : ["(none)"];
  select.replaceChildren(...classes.map((c) => new Option(c, c)));
  select.disabled = !generator.loaded;
  $("gen-button").disabled = !generator.loaded;
  $("gen-spectrogram").hidden = !generator.loaded;
  $("gen-player").hidden = !generator.loaded;
  if (!generator.loaded) {
    $("gen-info").textContent = "No generator loaded: start the server with "
      + "`sonic serve --generator data/models/cgan.pt` to generate sounds.";
  }
}

/** A File holding the WAV bytes of a base64 string. */
function wavFile(base64, name) {
  const bytes = Uint8Array.from(atob(base64), (ch) => ch.charCodeAt(0));
  return new File([bytes], name, { type: "audio/wav" });
}

function renderGenerated(result) {
  const clip = result.clips[0];
  state.genFile = wavFile(clip.wav_base64, `generated-${result.label}-${result.seed}.wav`);
  if (state.genUrl) URL.revokeObjectURL(state.genUrl);
  state.genUrl = URL.createObjectURL(state.genFile);
  $("gen-player").src = state.genUrl;
  const canvas = $("gen-spectrogram");
  drawRows(canvas, clip.mel.data, VIRIDIS, { bottomUp: true });
  const [bands, frames] = clip.mel.shape;
  canvas.setAttribute("aria-label", `Log-mel spectrogram of a generated ${result.label} sample, `
    + `${bands} mel bands by ${frames} frames, low frequencies at the bottom`);
  $("gen-info").textContent = `A new ${result.label} · seed ${result.seed} · `
    + `${fmt(clip.duration_s)} s at ${result.sample_rate} Hz`;
  $("gen-classify").hidden = false;
}

async function generate() {
  const label = $("gen-class").value;
  const button = $("gen-button");
  button.disabled = true;
  clearError();
  setStatus(`Generating a ${label}…`);
  try {
    const result = await api("/api/generate", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ label, n: 1 }),
    });
    renderGenerated(result);
    setStatus(`Generated a ${label} (seed ${result.seed}).`);
  } catch (err) {
    reportFailure(err, "Generating failed");
  } finally {
    button.disabled = false;
  }
}

// ------------------------------------------------------------------------------- listening
function liveUrl() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const token = savedToken();
  return `${scheme}://${location.host}/api/live${token ? `?token=${encodeURIComponent(token)}` : ""}`;
}

function logLive(entry) {
  state.liveLog.push({ t: performance.now(), ...entry });
  if (state.liveLog.length > LIVE_LOG_MAX) state.liveLog.splice(0, state.liveLog.length - LIVE_LOG_MAX);
}

/** When the chunk holding input second `heard` was captured (performance.now() ms). */
function capturedAt(heard, rate) {
  const sample = Math.round(heard * rate);
  for (let i = state.liveLog.length - 1; i >= 0; i--) {
    const entry = state.liveLog[i];
    if (entry.kind === "chunk" && entry.end - entry.n < sample) return entry.t;
  }
  return null;
}

/** One answer of /api/live: the rolling top-3, the events lanes, and how far behind it is. */
function renderLive(result) {
  const live = state.live;
  renderTop3(result.top, $("live-top3"));
  const to = Math.max(result.end_s, LIVE_VIEW_S);
  renderLanes($("live-lanes"), result.events, to - LIVE_VIEW_S, to, false);
  requestAnimationFrame(() => {  // on screen: the next frame after the DOM changed
    const shown = performance.now();
    logLive({ kind: "shown", label: result.label, heard_s: result.heard_s, end_s: result.end_s });
    const captured = capturedAt(result.heard_s, live.rate);
    if (captured !== null) {
      $("live-lag").textContent = `${result.label} · window ending at ${fmt(result.end_s, 1)} s · `
        + `on screen ${Math.round(shown - captured)} ms after the audio was captured`;
    }
  });
}

function onLiveMessage(event) {
  const message = JSON.parse(event.data);
  if (message.type === "ready") {
    state.live.ready = true;
    $("live-info").textContent = `Listening with ${message.model}: a ${fmt(message.window_s)} s `
      + `window every ${fmt(message.hop_s)} s, events of the last ${Math.round(message.history_s)} s.`;
  } else if (message.type === "result") {
    renderLive(message);
  } else if (message.type === "error") {
    showError(`Listening stopped: ${message.detail}`);
  }
}

function onLiveClose(event) {
  if (!state.live) return;
  if (!state.live.ready && event.code !== 1000) {
    showError("The server refused to listen (a foreign page, or a token it does not know: "
      + "reload the page and enter the token).");
  }
  stopLive();
}

async function openMicrophone() {
  const stream = await navigator.mediaDevices.getUserMedia({
    audio: { channelCount: 1, echoCancellation: false, noiseSuppression: false,
      autoGainControl: false },
  });
  const context = new AudioContext();
  await context.audioWorklet.addModule("/static/capture.js");
  const source = context.createMediaStreamSource(stream);
  const node = new AudioWorkletNode(context, "pcm-capture",
    { processorOptions: { chunk: Math.round(context.sampleRate * LIVE_CHUNK_S) } });
  const mute = context.createGain();  // pulls the worklet through the graph, silently
  mute.gain.value = 0;
  source.connect(node).connect(mute).connect(context.destination);
  return { stream, context, node };
}

async function startLive() {
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    showError("This browser offers no microphone to this page: open it at http://127.0.0.1 "
      + "or http://localhost on the server's machine, or over HTTPS.");
    return;
  }
  clearError();
  let mic;
  try {
    mic = await openMicrophone();
  } catch (err) {
    showError(`No microphone: ${err.message}`);
    return;
  }
  const live = { ...mic, rate: mic.context.sampleRate, ready: false, sent: 0,
    socket: new WebSocket(liveUrl()) };
  state.live = live;
  state.liveLog = [];
  live.socket.binaryType = "arraybuffer";
  live.socket.addEventListener("open", () => live.socket.send(JSON.stringify(
    { sample_rate: live.rate, model: $("model-select").value })));
  live.socket.addEventListener("message", onLiveMessage);
  live.socket.addEventListener("close", onLiveClose);
  live.node.port.onmessage = (e) => {
    if (!live.ready || live.socket.readyState !== WebSocket.OPEN) return;
    const n = e.data.pcm.byteLength / 2;
    live.socket.send(e.data.pcm);
    live.sent += n;
    logLive({ kind: "chunk", end: live.sent, n, peak: e.data.peak, loud: e.data.loud,
      rate: live.rate });
  };
  $("live-button").textContent = "Stop listening";
  $("live-button").setAttribute("aria-pressed", "true");
  setStatus("Listening…");
}

function stopLive() {
  const live = state.live;
  if (!live) return;
  state.live = null;
  live.node.port.onmessage = null;
  if (live.socket.readyState <= WebSocket.OPEN) live.socket.close(1000);
  live.stream.getTracks().forEach((track) => track.stop());
  live.context.close();
  $("live-button").textContent = "Start listening";
  $("live-button").setAttribute("aria-pressed", "false");
  setStatus("Stopped listening.");
}

// ---------------------------------------------------------------------------------- events
function bindDropZone() {
  const zone = $("drop-zone");
  // Anywhere else on the page a dropped file must not make the browser navigate away.
  for (const type of ["dragover", "drop"]) window.addEventListener(type, (e) => e.preventDefault());
  zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    zone.classList.remove("over");
    chooseFile(e.dataTransfer.files[0]);
  });
}

/** Timeline: a click (or Enter/Space) inspects a window; arrow keys, Home, End move focus. */
function bindTimeline() {
  const timeline = $("timeline");
  timeline.addEventListener("click", (e) => {
    const button = e.target.closest("button");
    if (button) inspectWindow(Number(button.dataset.index));
  });
  timeline.addEventListener("keydown", (e) => {
    const buttons = [...timeline.children];
    const at = buttons.indexOf(document.activeElement);
    const moves = { ArrowLeft: at - 1, ArrowRight: at + 1, Home: 0, End: buttons.length - 1 };
    if (at < 0 || !(e.key in moves)) return;
    e.preventDefault();
    buttons[Math.max(0, Math.min(buttons.length - 1, moves[e.key]))].focus();
  });
}

function bindEvents() {
  $("file-input").addEventListener("change", (e) => chooseFile(e.target.files[0]));
  $("model-select").addEventListener("change", () => { showModelInfo(); analyse(); });
  $("player").addEventListener("timeupdate", redrawWaveform);
  $("gen-button").addEventListener("click", generate);
  $("gen-classify").addEventListener("click", () => {
    state.file = state.genFile;
    playFile(state.genFile);
    analyse();
  });
  $("lanes").addEventListener("click", (e) => {
    const t = laneTime(e);
    if (t !== null && state.prediction) inspectWindow(windowAt(t));
  });
  $("live-button").addEventListener("click", () => (state.live ? stopLive() : startLive()));
  $("token-form").addEventListener("submit", useToken);
  bindDropZone();
  bindTimeline();
}

async function loadModels() {
  try {
    state.info = await api("/api/models");
  } catch (err) {
    if (!(err instanceof TokenError)) showError(`Loading the models failed: ${err.message}`);
    return;
  }
  renderModels(state.info);
  renderGeneratePanel(state.info.generator);
  const f = state.info.features;
  setStatus(`Ready: ${state.info.classes.length} classes, ${f.sample_rate} Hz, `
    + `${fmt(state.info.window_s)} s windows. Choose a file.`);
}

async function init() {
  bindEvents();
  drawColourBar();
  await loadModels();
}

init();
