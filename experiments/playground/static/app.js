// The jaxnet playground page: settings <-> URL, server calls, drawing.
// No library, no build step: plain DOM and canvas.
"use strict";

const COLORS = [[245, 140, 30], [37, 99, 235], [22, 163, 74], [147, 51, 234], [220, 38, 38]];
const FIELDS = ["data", "classes", "points", "output", "init", "learning_rate", "optimizer",
  "lambd", "keep_prob", "batch_size", "iterations", "seed", "grad"];
const $ = (id) => document.getElementById(id);

let session = null;
let options = null;
let layers = [];          // [{width, activation}]
let described = null;     // the configure answer: points, extent, classes
let latest = null;        // the latest update
let events = null;
let configureTimer = null;
let updateTimes = [];

async function call(path, body, raw) {
  const url = path + (path.includes("?") ? "&" : "?") + "session=" + encodeURIComponent(session || "");
  const init = body === undefined ? {} : {method: "POST", body: raw ? body : JSON.stringify(body),
    headers: raw ? {"Content-Type": "text/csv"} : {"Content-Type": "application/json"}};
  const response = await fetch(url, init);
  const type = response.headers.get("content-type") || "";
  const value = type.includes("json") ? await response.json() : await response.text();
  if (!response.ok) {
    const error = new Error(value.error || String(value));
    error.field = value.field || "";
    throw error;
  }
  return value;
}

function showMessage(text, info) {
  const box = $("message");
  box.hidden = !text;
  box.textContent = text || "";
  box.classList.toggle("info", !!info);
}

function fieldError(field, text) {
  document.querySelectorAll(".invalid").forEach((e) => e.classList.remove("invalid"));
  document.querySelectorAll(".field-error").forEach((e) => e.remove());
  if (!text) return;
  let target = $(field);
  const layer = /layer (\d+)/.exec(field);
  if (!target && layer) target = document.querySelector(`#layers .layer-row:nth-child(${layer[1]}) input`);
  if (!target && field === "hidden") target = $("layers");
  if (!target && field === "activations") target = $("layers");
  if (target) {
    target.classList.add("invalid");
    const note = document.createElement("p");
    note.className = "field-error";
    note.textContent = text;
    (target.closest("label") || target).after(note);
  }
}

function fillSelect(id, names) {
  $(id).innerHTML = names.map((n) => `<option value="${n}">${n}</option>`).join("");
}

function renderLayers() {
  const box = $("layers");
  box.innerHTML = "";
  layers.forEach((layer, i) => {
    const row = document.createElement("div");
    row.className = "layer-row";
    row.innerHTML = `<span>${i + 1}</span><input type="number" min="1" max="${options.caps.width}"
      value="${layer.width}" title="units"><select title="activation"></select>
      <button class="small" title="remove this layer">&times;</button>`;
    const select = row.querySelector("select");
    select.innerHTML = options.activations.map((n) => `<option>${n}</option>`).join("");
    select.value = layer.activation;
    row.querySelector("input").addEventListener("change", (e) => { layer.width = e.target.value; changed(); });
    select.addEventListener("change", (e) => { layer.activation = e.target.value; changed(); });
    row.querySelector("button").addEventListener("click", () => { layers.splice(i, 1); renderLayers(); changed(); });
    box.appendChild(row);
  });
}

function settings() {
  const s = {};
  for (const f of FIELDS) s[f] = $(f).value;
  s.hidden = layers.map((l) => l.width).join(",");
  s.activations = layers.map((l) => l.activation).join(",");
  return s;
}

function applySettings(s) {
  for (const f of FIELDS) if (s[f] !== undefined && s[f] !== null) $(f).value = s[f];
  if (s.batch_size === null) $("batch_size").value = "";
  const widths = Array.isArray(s.hidden) ? s.hidden : String(s.hidden || "").split(",").filter((x) => x);
  const acts = Array.isArray(s.activations) ? s.activations : String(s.activations || "").split(",");
  layers = widths.map((w, i) => ({width: w, activation: acts[i] || options.activations[0]}));
  renderLayers();
  showDataRows();
}

function showDataRows() {
  const data = $("data").value;
  $("classes-row").hidden = data !== "spirals";
  $("points-row").hidden = data === "csv";
  $("csv-row").hidden = data !== "csv";
  $("csv-info").hidden = data !== "csv";
}

function writeUrl(s) {
  const query = new URLSearchParams(s).toString();
  history.replaceState(null, "", "#" + query);
}

function changed() {
  showDataRows();
  clearTimeout(configureTimer);
  configureTimer = setTimeout(configure, 250);
}

async function configure() {
  const s = settings();
  writeUrl(s);
  try {
    described = await call("/api/configure", s);
    fieldError("", "");
    showMessage("");
    $("code").hidden = true;
    $("gradcheck-result").innerHTML = "";
    drawLegend();
    drawBoundary();  // the update may have come before this answer
  } catch (e) {
    fieldError(e.field, e.message);
    showMessage(e.message);
  }
}

async function control(action) {
  try {
    const answer = await call("/api/control", {action});
    if (answer.message) showMessage(answer.message, true);
    if (action === "reset") { described = answer; drawLegend(); drawBoundary(); }
  } catch (e) {
    showMessage(e.message);
  }
}

function drawLegend() {
  if (!described) return;
  const K = described.classes;
  let html = "";
  for (let k = 0; k < K; k++) {
    const [r, g, b] = COLORS[k];
    html += `<span><span class="swatch" style="background:rgb(${r},${g},${b})"></span>class ${k}</span>`;
  }
  html += `<span><span class="swatch" style="background:#fff"></span>held out (test)</span>`;
  $("legend").innerHTML = html;
}

function decode(b64) {
  const text = atob(b64);
  const bytes = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
  return bytes;
}

function drawBoundary() {
  if (!described || !latest || !latest.boundary) return;
  const canvas = $("boundary");
  const ctx = canvas.getContext("2d");
  const n = described.grid;
  const cls = decode(latest.boundary.cls);
  const conf = decode(latest.boundary.conf);
  const K = Math.max(described.classes, 2);
  const image = new ImageData(n, n);
  for (let i = 0; i < n * n; i++) {
    const color = COLORS[cls[i] % COLORS.length];
    const t = Math.min(Math.max((conf[i] / 255 - 1 / K) / (1 - 1 / K), 0), 1);
    const a = 0.12 + 0.5 * t;
    for (let c = 0; c < 3; c++) image.data[4 * i + c] = Math.round(255 * (1 - a) + color[c] * a);
    image.data[4 * i + 3] = 255;
  }
  const small = document.createElement("canvas");
  small.width = n; small.height = n;
  small.getContext("2d").putImageData(image, 0, 0);
  ctx.imageSmoothingEnabled = true;
  ctx.drawImage(small, 0, 0, canvas.width, canvas.height);
  const [x0, x1, y0, y1] = described.extent;
  const W = canvas.width, H = canvas.height;
  for (const [x, y, label, test] of described.points) {
    const px = (x - x0) / (x1 - x0) * W, py = (y1 - y) / (y1 - y0) * H;
    const [r, g, b] = COLORS[label % COLORS.length];
    ctx.beginPath();
    ctx.arc(px, py, 3.6, 0, 2 * Math.PI);
    ctx.fillStyle = test ? "#fff" : `rgb(${r},${g},${b})`;
    ctx.fill();
    ctx.lineWidth = test ? 2 : 1;
    ctx.strokeStyle = test ? `rgb(${r},${g},${b})` : "rgba(0,0,0,0.55)";
    ctx.stroke();
  }
}

function drawCurve() {
  const canvas = $("curve");
  const ctx = canvas.getContext("2d");
  const W = canvas.width = canvas.clientWidth * devicePixelRatio;
  const H = canvas.height = canvas.clientHeight * devicePixelRatio;
  ctx.clearRect(0, 0, W, H);
  const points = (latest && latest.curve || []).filter((p) => p[1] !== null);
  ctx.font = `${11 * devicePixelRatio}px system-ui, sans-serif`;
  ctx.fillStyle = "#65748b";
  if (points.length < 1) { ctx.fillText("press Start", 10 * devicePixelRatio, H / 2); return; }
  const last = Math.max(points[points.length - 1][0], 1);
  const top = Math.max(...points.map((p) => p[1])) * 1.05 || 1;
  const pad = 8 * devicePixelRatio;
  ctx.strokeStyle = "#2563eb";
  ctx.lineWidth = 2 * devicePixelRatio;
  ctx.beginPath();
  points.forEach(([i, c], k) => {
    const x = pad + (W - 2 * pad) * i / last, y = H - pad - (H - 2 * pad) * c / top;
    if (k === 0) ctx.moveTo(x, y); else ctx.lineTo(x, y);
  });
  ctx.stroke();
  ctx.textAlign = "right";
  ctx.fillText(`J from ${points[0][1].toPrecision(3)} to ${points[points.length - 1][1].toPrecision(3)}`,
    W - pad, pad + 8 * devicePixelRatio);
  ctx.fillText(`iteration ${last}`, W - pad, H - pad);
}

function percent(x) { return x === null || x === undefined ? "-" : (100 * x).toFixed(1) + "%"; }

function renderUpdate(update) {
  latest = update;
  const now = performance.now();
  if (update.status === "running") updateTimes.push(now); else updateTimes = [];
  updateTimes = updateTimes.filter((t) => now - t < 2000);
  const span = (updateTimes[updateTimes.length - 1] - updateTimes[0]) / 1000;
  const rate = updateTimes.length > 1 && span > 0 ? (updateTimes.length - 1) / span : 0;
  $("iteration").textContent = update.iteration ?? 0;
  $("cost-value").textContent = update.cost === null || update.cost === undefined ? "-" : update.cost.toFixed(4);
  $("train-acc").textContent = percent(update.train_acc);
  $("test-acc").textContent = percent(update.test_acc);
  const status = update.status || "idle";
  const where = `${update.iteration ?? 0} of ${update.iterations ?? "?"} iterations`;
  $("status").textContent = status === "running" ? `running, ${rate.toFixed(1)} updates/s`
    : ["paused", "done"].includes(status) ? `${status}: ${where}` : status;
  if (update.message && ["diverged", "error", "done"].includes(status)) {
    showMessage(update.message, status === "done");
  }
  const body = $("layers-table").querySelector("tbody");
  body.innerHTML = (update.layers || []).map((l) => {
    const dead = l.dead === null ? "-" : percent(l.dead);
    const sat = l.saturated === null ? "-" : percent(l.saturated);
    const norm = l.grad_norm === null ? "-" : l.grad_norm.toExponential(1);
    const ratio = l.update_ratio === null ? "-" : l.update_ratio.toExponential(1);
    return `<tr><td>${l.layer}${l.symmetric ? " <span class='warn' title='every unit equal'>=</span>" : ""}</td>` +
      `<td>${l.units}</td><td>${l.activation}</td>` +
      `<td class="${l.dead > 0 ? "warn" : ""}">${dead}</td>` +
      `<td class="${l.saturated > 0.5 ? "warn" : ""}">${sat}</td><td>${norm}</td><td>${ratio}</td></tr>`;
  }).join("");
  const hints = $("hints");
  hints.innerHTML = "";
  for (const hint of update.hints || []) {
    const item = document.createElement("li");
    item.textContent = hint;
    hints.appendChild(item);
  }
  drawBoundary();
  drawCurve();
}

function listen() {
  if (events) events.close();
  events = new EventSource("/api/events?session=" + encodeURIComponent(session));
  events.onmessage = (e) => renderUpdate(JSON.parse(e.data));
  events.onerror = () => { $("status").textContent = "reconnecting"; };
}

async function gradientCheck() {
  const box = $("gradcheck-result");
  box.innerHTML = "<p class='hint'>checking (float64)...</p>";
  try {
    const r = await call("/api/gradcheck", {});
    const rows = r.rows.map((row) => `<tr><td>${row.leaf}</td><td>${row.shape.join("x")}</td>` +
      `<td>${row.vs_autodiff.toExponential(1)}</td>` +
      `<td>${row.vs_finite_differences === null ? "-" : row.vs_finite_differences.toExponential(1)}</td>` +
      `<td class="${row.passed ? "pass" : "fail"}">${row.passed ? "ok" : "FAIL"}</td></tr>`).join("");
    box.innerHTML = `<p id="gradcheck-verdict" class="${r.passed ? "pass" : "fail"}">` +
      `gradient check ${r.passed ? "passed" : "FAILED"} at iteration ${r.iteration}` +
      ` on ${r.examples} examples (relative differences; tolerances ` +
      `${r.autodiff_tol.toExponential(0)} vs jax.grad, ${r.fd_tol.toExponential(0)} vs finite differences)</p>` +
      (r.note ? `<p class="hint">${r.note}</p>` : "") +
      `<table id="gradcheck-table"><thead><tr><th>leaf</th><th>shape</th><th>vs jax.grad</th>` +
      `<th>vs finite diff.</th><th></th></tr></thead><tbody>${rows}</tbody></table>`;
  } catch (e) {
    box.innerHTML = "";
    showMessage(e.message);
  }
}

async function showCode() {
  const pre = $("code");
  if (!pre.hidden) { pre.hidden = true; return; }
  try { pre.textContent = await call("/api/code"); pre.hidden = false; } catch (e) { showMessage(e.message); }
}

async function upload(file) {
  try {
    const info = await call("/api/upload", await file.arrayBuffer(), true);
    showMessage(`${file.name}: ${info.rows} rows, ${info.classes} classes (${info.per_class.join(" / ")})`, true);
    fieldError("", "");
    configure();
  } catch (e) {
    fieldError("csv", e.message);
    showMessage(e.message);
  }
}

async function boot() {
  options = await (await fetch("/api/options")).json();
  fillSelect("data", options.datasets);
  fillSelect("output", options.outputs);
  fillSelect("init", options.inits);
  fillSelect("optimizer", options.optimizers);
  fillSelect("grad", options.grads);
  const fromUrl = Object.fromEntries(new URLSearchParams(location.hash.slice(1)));
  applySettings({...options.defaults, ...fromUrl});
  session = (await call("/api/session", {})).session;
  listen();
  for (const f of FIELDS) $(f).addEventListener("change", changed);
  $("add-layer").addEventListener("click", () => {
    if (layers.length >= options.caps.hidden_layers) {
      showMessage(`at most ${options.caps.hidden_layers} hidden layers`);
      return;
    }
    layers.push({width: 4, activation: layers.length ? layers[layers.length - 1].activation : "relu"});
    renderLayers();
    changed();
  });
  $("csv").addEventListener("change", (e) => { if (e.target.files[0]) upload(e.target.files[0]); });
  for (const action of ["start", "pause", "step", "reset"]) {
    $(action).addEventListener("click", () => control(action));
  }
  $("gradcheck").addEventListener("click", gradientCheck);
  $("show-code").addEventListener("click", showCode);
  $("download").addEventListener("click", () => {
    window.location = "/api/checkpoint?session=" + encodeURIComponent(session);
  });
  window.addEventListener("resize", drawCurve);
  if ($("data").value === "csv") showMessage("choose your CSV file to continue", true);
  else await configure();
}

boot().catch((e) => showMessage("could not start: " + e.message));
