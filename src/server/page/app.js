// Stipple live page: draws each frame's JPEG with its overlay, from one WebSocket.
// Per frame the server sends the overlay JSON (text) then the JPEG (binary). Drawing never
// queues: if a frame arrives while the previous one is still decoding, only the newest waits.
"use strict";

const canvas = document.getElementById("view");
const ctx = canvas.getContext("2d");
const $ = (id) => document.getElementById(id);

// Exposed for tests and for the curious: what the page has actually drawn.
const stats = (window.stippleStats = {
  connected: false, framesReceived: 0, framesDrawn: 0, overlaysDrawn: 0,
  lastSeq: -1, dotsDrawn: 0, recsDrawn: 0, targetDrawn: false, lastDrawMs: 0,
});

let pendingOverlay = null; // overlay JSON waiting for its JPEG
let next = null;           // newest {overlay, blob} not yet drawn
let busy = false;
let editing = null;        // "zone" | "hairline" | null
let editPoints = [];
let lastOverlay = null;

function connect() {
  const ws = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`);
  ws.binaryType = "arraybuffer";
  ws.onopen = () => { stats.connected = true; };
  ws.onclose = () => { stats.connected = false; setTimeout(connect, 1000); };
  ws.onmessage = (ev) => {
    if (typeof ev.data === "string") {
      pendingOverlay = JSON.parse(ev.data);
      return;
    }
    stats.framesReceived++;
    next = { overlay: pendingOverlay, blob: new Blob([ev.data], { type: "image/jpeg" }) };
    pendingOverlay = null;
    if (!busy) drawNext();
  };
}

async function drawNext() {
  if (!next) return;
  busy = true;
  const { overlay, blob } = next;
  next = null;
  try {
    const bitmap = await createImageBitmap(blob);
    if (canvas.width !== bitmap.width || canvas.height !== bitmap.height) {
      canvas.width = bitmap.width; canvas.height = bitmap.height;
    }
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.drawImage(bitmap, 0, 0);
    bitmap.close();
    stats.framesDrawn++;
    if (overlay) { drawOverlay(overlay); lastOverlay = overlay; }
    drawEditing();
    stats.lastDrawMs = performance.now();
  } catch (e) {
    console.warn("frame skipped", e);
  }
  busy = false;
  if (next) requestAnimationFrame(drawNext);
}

function heatColor(r) {
  // red below target, yellow near, green at or above.
  const t = Math.max(0, Math.min(1, r));
  const red = t < 0.5 ? 255 : Math.round(255 * (1 - t) * 2);
  const green = t < 0.5 ? Math.round(255 * t * 2) : 255;
  return `rgba(${red},${green},0,0.35)`;
}

function drawOverlay(o) {
  const px = Math.max(1, canvas.width / 640); // line widths scale with the picture
  if ($("t-heat").checked && o.heat) {
    const h = o.heat, m = o.image_from_skin;
    ctx.save();
    ctx.setTransform(m[0], m[3], m[1], m[4], m[2], m[5]);
    for (let r = 0; r < h.rows; r++) for (let c = 0; c < h.cols; c++) {
      const v = h.ratio[r * h.cols + c];
      if (v < 0) continue;
      ctx.fillStyle = heatColor(v);
      ctx.fillRect(h.origin_mm[0] + c * h.cell_mm, h.origin_mm[1] + r * h.cell_mm, h.cell_mm, h.cell_mm);
    }
    ctx.restore();
  }
  let dots = 0;
  const planShown = !o.calibration; // calibration mode shows the board instead (calib.js)
  if ($("t-dots").checked && planShown) {
    ctx.lineWidth = px;
    for (const [x, y, r, k] of o.dots) {
      ctx.strokeStyle = k > 0.5 ? "rgba(80,160,255,0.9)" : "rgba(255,255,255,0.55)";
      ctx.beginPath(); ctx.arc(x, y, Math.max(r, 2) + px, 0, 2 * Math.PI); ctx.stroke();
      dots++;
    }
  }
  for (const z of o.zones) {
    if (z.points.length < 3) continue;
    ctx.strokeStyle = "rgba(255,176,0,0.9)"; ctx.lineWidth = 2 * px; ctx.setLineDash([8 * px, 6 * px]);
    ctx.beginPath(); z.points.forEach(([x, y], i) => (i ? ctx.lineTo(x, y) : ctx.moveTo(x, y)));
    ctx.closePath(); ctx.stroke(); ctx.setLineDash([]);
  }
  if (o.hairline.length > 1) {
    ctx.strokeStyle = "rgba(255,80,200,0.95)"; ctx.lineWidth = 3 * px;
    ctx.beginPath(); o.hairline.forEach(([x, y], i) => (i ? ctx.lineTo(x, y) : ctx.moveTo(x, y))); ctx.stroke();
  }
  let recs = 0;
  if ($("t-recs").checked && planShown) {
    ctx.font = `bold ${Math.round(11 * px)}px system-ui, sans-serif`;
    ctx.textAlign = "center"; ctx.textBaseline = "middle";
    for (const [x, y, n] of o.recs) {
      ctx.fillStyle = "rgba(0,229,255,0.95)";
      ctx.beginPath(); ctx.arc(x, y, 3 * px, 0, 2 * Math.PI); ctx.fill();
      ctx.lineWidth = 3 * px; ctx.strokeStyle = "#000"; ctx.strokeText(String(n), x + 9 * px, y - 9 * px);
      ctx.fillText(String(n), x + 9 * px, y - 9 * px);
      recs++;
    }
    if (o.target) {
      const [x, y, r] = o.target;
      ctx.strokeStyle = "#7CFC00"; ctx.lineWidth = 3 * px;
      ctx.beginPath(); ctx.arc(x, y, Math.max(r, 6 * px), 0, 2 * Math.PI); ctx.stroke();
      ctx.beginPath(); ctx.arc(x, y, Math.max(r, 6 * px) + 6 * px, 0, 2 * Math.PI); ctx.stroke();
    }
  }
  if (window.stippleCalib) window.stippleCalib.draw(ctx, o, px); // calibration mode (calib.js)
  stats.overlaysDrawn++;
  stats.lastSeq = o.seq;
  stats.dotsDrawn = dots;
  stats.recsDrawn = recs;
  stats.targetDrawn = !!o.target;
  $("s-placed").textContent = o.dots_placed;
  const banner = $("banner");
  if (o.source_status && o.source_status !== "streaming") {
    banner.textContent = o.source_status; banner.hidden = false;
  } else banner.hidden = true;
}

function drawEditing() {
  if (!editing || editPoints.length === 0) return;
  const px = Math.max(1, canvas.width / 640);
  ctx.strokeStyle = "#fff"; ctx.fillStyle = "#fff"; ctx.lineWidth = 2 * px;
  ctx.beginPath(); editPoints.forEach(([x, y], i) => (i ? ctx.lineTo(x, y) : ctx.moveTo(x, y))); ctx.stroke();
  for (const [x, y] of editPoints) { ctx.beginPath(); ctx.arc(x, y, 4 * px, 0, 2 * Math.PI); ctx.fill(); }
}

canvas.addEventListener("pointerdown", (ev) => {
  if (!editing) return;
  const r = canvas.getBoundingClientRect();
  editPoints.push([(ev.clientX - r.left) * canvas.width / r.width, (ev.clientY - r.top) * canvas.height / r.height]);
});

function startEdit(kind) {
  editing = kind; editPoints = [];
  $("z-done").hidden = false; $("z-help").hidden = false;
  $("z-zone").classList.toggle("on", kind === "zone"); $("z-hair").classList.toggle("on", kind === "hairline");
}
function stopEdit() {
  editing = null; editPoints = [];
  $("z-done").hidden = true; $("z-help").hidden = true;
  $("z-zone").classList.remove("on"); $("z-hair").classList.remove("on");
}

async function send(method, url, body) {
  const res = await fetch(url, { method, headers: { "content-type": "application/json" }, body: body && JSON.stringify(body) });
  if (!res.ok) { const e = await res.json().catch(() => ({})); alert(e.error || res.statusText); return null; }
  return res.json();
}

function showDesign(d) {
  if (!d) return;
  $("c-session").value = String(d.session); $("c-target").value = d.target_per_cm2; $("c-spacing").value = d.min_spacing_mm;
}

$("z-zone").onclick = () => startEdit("zone");
$("z-hair").onclick = () => startEdit("hairline");
$("z-done").onclick = async () => {
  const pts = editPoints, kind = editing;
  stopEdit();
  if (kind === "zone" && pts.length >= 3) {
    const name = prompt("Zone name", "zone") || "zone";
    showDesign(await send("POST", "/api/zones", { name, points_in_image: pts, target_per_cm2: Number($("c-target").value) }));
  } else if (kind === "hairline" && pts.length >= 2) {
    showDesign(await send("POST", "/api/hairline", { points_in_image: pts }));
  }
};
$("z-clear").onclick = async () => showDesign(await send("DELETE", "/api/zones"));
$("c-apply").onclick = async () => {
  const d = await (await fetch("/api/design")).json();
  d.session = Number($("c-session").value);
  d.target_per_cm2 = Number($("c-target").value);
  d.min_spacing_mm = Number($("c-spacing").value);
  showDesign(await send("PUT", "/api/design", d));
};

async function pollStatus() {
  try {
    const s = await (await fetch("/api/status")).json();
    $("s-fps").textContent = s.fps.toFixed(1);
    $("s-lat").textContent = `${s.latency_ms.p50.toFixed(0)}/${s.latency_ms.p99.toFixed(0)}`;
    $("s-placed").textContent = s.dots_placed;
    const src = $("s-source");
    src.textContent = s.source_connected ? s.source : s.source_status;
    src.classList.toggle("down", !s.source_connected);
    const rec = $("s-rec"), r = s.recording;
    rec.hidden = !r;
    if (r) {
      rec.textContent = r.error ? `REC stopped: ${r.error}` : `REC ${r.frames_written} frames, ${r.frames_dropped} dropped`;
      rec.classList.toggle("down", !!r.error || r.frames_dropped > 0);
    }
    const plan = await fetch("/api/plan");
    if (plan.ok) {
      const p = await plan.json();
      $("s-zones").textContent = p.zones.map((z) => `${z.name} ${z.density_per_cm2.toFixed(0)}/${z.target_per_cm2.toFixed(0)} per cm²`).join(" · ");
    }
  } catch (e) { /* the server may be restarting */ }
  setTimeout(pollStatus, 1000);
}

fetch("/api/design").then((r) => r.json()).then(showDesign).catch(() => {});
// `stipple replay` answers /api/replay and serves its controls; the live service does not.
fetch("/api/replay").then((r) => {
  if (r.ok) document.body.appendChild(Object.assign(document.createElement("script"), { src: "/replay.js" }));
}).catch(() => {});
connect();
pollStatus();
