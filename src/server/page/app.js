// Stipple live page: draws each frame's JPEG with its overlay, from one WebSocket.
// Per frame the server sends the overlay JSON (text) then the JPEG (binary). Drawing never
// queues: if a frame arrives while the previous one is still decoding, only the newest waits.
// Everything the page changes goes through the JSON API (docs/api.md).
"use strict";

const canvas = document.getElementById("view");
const ctx = canvas.getContext("2d");
const $ = (id) => document.getElementById(id);

// The next-dot cue is at least this wide on screen (CSS px), whatever the picture's scale.
const CUE_MIN_CSS = 40;
// How many following dots are shown after the next one.
const FOLLOWING = 4;

// Exposed for tests and for the curious: what the page has actually drawn.
const stats = (window.stippleStats = {
  connected: false, framesReceived: 0, framesDrawn: 0, overlaysDrawn: 0,
  lastSeq: -1, dotsDrawn: 0, recsDrawn: 0, targetDrawn: false, lastDrawMs: 0,
  cue: null, labels: [], blowoutsShown: 0, blowoutSeqs: [], alerts: 0, paused: false,
});

let pendingOverlay = null; // overlay JSON waiting for its JPEG
let next = null;           // newest {overlay, blob} not yet drawn
let busy = false;
let editing = null;        // {kind, stage: "edge" | "polygon", edge: [...]} while drawing a zone
let editPoints = [];
let picking = false;       // "not a dot": the next tap picks the detection
let lastOverlay = null;
let alerted = new Set();   // blowout seqs already alerted

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
    fit();
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

// The picture as large as its box allows, keeping its shape (in portrait: the full width, up
// to 60% of the height; the controls take the rest).
let fitted = "";
function fit() {
  const st = $("stage");
  const portrait = matchMedia("(orientation: portrait)").matches;
  const aw = st.clientWidth, ah = portrait ? innerHeight * 0.6 : st.clientHeight;
  const key = `${aw}x${ah}x${canvas.width}x${canvas.height}`;
  if (key === fitted || aw <= 0 || ah <= 0) return;
  fitted = key;
  const s = Math.min(aw / canvas.width, ah / canvas.height);
  canvas.style.width = `${Math.floor(canvas.width * s)}px`;
  canvas.style.height = `${Math.floor(canvas.height * s)}px`;
}
addEventListener("resize", () => { fitted = ""; fit(); });

// Density map colours: red below half the target, yellow at half, green at or above target.
function heatColor(r) {
  const t = Math.max(0, Math.min(1, r));
  const red = t < 0.5 ? 255 : Math.round(255 * (1 - t) * 2);
  const green = t < 0.5 ? Math.round(255 * t * 2) : 255;
  return `rgba(${red},${green},0,0.35)`;
}

const ZONE_COLOURS = { fill: "rgba(255,176,0,0.9)", hairline: "rgba(255,80,200,0.95)", scar: "rgba(180,130,255,0.95)", nogo: "rgba(255,59,48,0.95)" };

// Labels never overlap: each is placed in the first free spot around its anchor, or dropped.
function makeLabeller(cssPerPx) {
  const boxes = [], placed = []; // everything to keep clear of; the labels drawn
  return {
    boxes, placed,
    reserve(x, y, w, h) { boxes.push({ x, y, w, h }); },
    place(text, ax, ay, gap, font) {
      ctx.font = font;
      const w = ctx.measureText(text).width + 6, h = parseInt(font.match(/(\d+)px/)[1], 10) + 4;
      const spots = [[gap, -gap - h], [gap, gap], [-gap - w, -gap - h], [-gap - w, gap], [-w / 2, -gap - h], [-w / 2, gap], [gap, -h / 2], [-gap - w, -h / 2]];
      for (const [dx, dy] of spots) {
        const b = { x: ax + dx, y: ay + dy, w, h };
        if (b.x < 0 || b.y < 0 || b.x + w > canvas.width || b.y + h > canvas.height) continue;
        if (boxes.some((o) => b.x < o.x + o.w && o.x < b.x + b.w && b.y < o.y + o.h && o.y < b.y + b.h)) continue;
        boxes.push(b); placed.push(b);
        ctx.textAlign = "left"; ctx.textBaseline = "top";
        ctx.fillStyle = "rgba(0,0,0,0.75)"; ctx.fillRect(b.x, b.y, w, h);
        ctx.fillStyle = "#fff"; ctx.fillText(text, b.x + 3, b.y + 2);
        return b;
      }
      return null;
    },
    css() { return placed.map((b) => ({ x: b.x * cssPerPx, y: b.y * cssPerPx, w: b.w * cssPerPx, h: b.h * cssPerPx })); },
  };
}

function drawOverlay(o) {
  const r = canvas.getBoundingClientRect();
  const cssPerPx = r.width > 0 ? r.width / canvas.width : 1;
  const u = 1 / cssPerPx; // one CSS pixel, in canvas pixels
  const planShown = !o.calibration; // calibration mode shows the board instead (calib.js)
  if ($("t-heat").checked && o.heat) {
    const h = o.heat, m = o.image_from_skin;
    const n = h.nodes_px; // through the camera's lens, when it distorts
    const lensed = n && n.length === (h.rows + 1) * (h.cols + 1);
    ctx.save();
    if (!lensed) ctx.setTransform(m[0], m[3], m[1], m[4], m[2], m[5]);
    for (let rr = 0; rr < h.rows; rr++) for (let c = 0; c < h.cols; c++) {
      const v = h.ratio[rr * h.cols + c];
      if (v < 0) continue;
      ctx.fillStyle = heatColor(v);
      if (lensed) {
        const k = rr * (h.cols + 1) + c, q = [n[k], n[k + 1], n[k + h.cols + 2], n[k + h.cols + 1]];
        ctx.beginPath(); q.forEach(([x, y], i) => (i ? ctx.lineTo(x, y) : ctx.moveTo(x, y)));
        ctx.closePath(); ctx.fill();
      } else {
        ctx.fillRect(h.origin_mm[0] + c * h.cell_mm, h.origin_mm[1] + rr * h.cell_mm, h.cell_mm, h.cell_mm);
      }
    }
    ctx.restore();
  }
  // What is not skin (gloves, the machine, hair, the room): shaded, so the artist sees why
  // nothing is planned there.
  if (planShown && o.not_skin) {
    ctx.fillStyle = "rgba(20,20,28,0.55)";
    ctx.strokeStyle = "rgba(200,200,210,0.5)"; ctx.lineWidth = 1 * u;
    for (const poly of o.not_skin) {
      if (poly.length < 3) continue;
      ctx.beginPath(); poly.forEach(([x, y], i) => (i ? ctx.lineTo(x, y) : ctx.moveTo(x, y)));
      ctx.closePath(); ctx.fill(); ctx.stroke();
    }
  }
  // Where the plan keeps off the skin (glare, a dark mark larger than a dot): outlined in
  // magenta and hatched, as `stipple plan` draws it; the reasons are in the goal line.
  if (planShown && o.declined) {
    ctx.strokeStyle = "rgba(255,64,255,0.85)"; ctx.lineWidth = 1.5 * u;
    for (const d of o.declined) {
      const poly = d.polygon;
      if (poly.length < 3) continue;
      ctx.save();
      ctx.beginPath(); poly.forEach(([x, y], i) => (i ? ctx.lineTo(x, y) : ctx.moveTo(x, y)));
      ctx.closePath(); ctx.stroke(); ctx.clip();
      let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
      for (const [x, y] of poly) { x0 = Math.min(x0, x); y0 = Math.min(y0, y); x1 = Math.max(x1, x); y1 = Math.max(y1, y); }
      ctx.beginPath();
      for (let k = x0 - (y1 - y0); k < x1; k += 10 * u) { ctx.moveTo(k, y1); ctx.lineTo(k + (y1 - y0), y0); }
      ctx.stroke();
      ctx.restore();
    }
  }
  let dots = 0;
  if (planShown) {
    const detail = $("t-dots").checked;
    for (const [x, y, rad, k] of o.dots) {
      if (k > 1.5) { // marked "not a dot"
        ctx.strokeStyle = "rgba(255,59,48,0.7)"; ctx.lineWidth = 1.5 * u;
        const s = Math.max(rad, 3 * u);
        ctx.beginPath(); ctx.moveTo(x - s, y - s); ctx.lineTo(x + s, y + s); ctx.moveTo(x + s, y - s); ctx.lineTo(x - s, y + s); ctx.stroke();
      } else if (detail) {
        ctx.lineWidth = 1.5 * u;
        ctx.strokeStyle = k > 0.5 ? "rgba(80,160,255,0.9)" : "rgba(255,255,255,0.6)";
        ctx.beginPath(); ctx.arc(x, y, Math.max(rad, 2 * u) + 1.5 * u, 0, 2 * Math.PI); ctx.stroke();
      } else { // dimmed: a faint dot, so that the next-dot cue stands out
        ctx.fillStyle = "rgba(255,255,255,0.22)";
        ctx.beginPath(); ctx.arc(x, y, 1.5 * u, 0, 2 * Math.PI); ctx.fill();
      }
      dots++;
    }
  }
  const labels = makeLabeller(cssPerPx);
  // The scale bar's corner is taken first.
  drawScaleBar(o, u, labels);
  for (const z of o.zones) {
    if (z.points.length < 3) continue;
    const colour = ZONE_COLOURS[z.kind] || ZONE_COLOURS.fill;
    ctx.strokeStyle = colour; ctx.lineWidth = 2 * u; ctx.setLineDash(z.kind === "nogo" ? [] : [8 * u, 6 * u]);
    ctx.beginPath(); z.points.forEach(([x, y], i) => (i ? ctx.lineTo(x, y) : ctx.moveTo(x, y)));
    ctx.closePath(); ctx.stroke(); ctx.setLineDash([]);
    if (z.kind === "nogo") { ctx.fillStyle = "rgba(255,59,48,0.15)"; ctx.fill(); }
    if (z.front_edge.length > 1) {
      ctx.strokeStyle = colour; ctx.lineWidth = 4 * u;
      ctx.beginPath(); z.front_edge.forEach(([x, y], i) => (i ? ctx.lineTo(x, y) : ctx.moveTo(x, y))); ctx.stroke();
    }
  }
  let recs = 0;
  stats.cue = null;
  if ($("t-recs").checked && planShown && o.recs.length) {
    // The next dot: a large ring with a gap-cross, its order number in a badge, its ink.
    const [cx, cy] = o.recs[0];
    const radius = Math.max(o.target ? o.target[2] : 0, (CUE_MIN_CSS / 2) * u);
    ctx.lineWidth = 6 * u; ctx.strokeStyle = "#000";
    ctx.beginPath(); ctx.arc(cx, cy, radius, 0, 2 * Math.PI); ctx.stroke();
    ctx.lineWidth = 4 * u; ctx.strokeStyle = "#7CFC00";
    ctx.beginPath(); ctx.arc(cx, cy, radius, 0, 2 * Math.PI); ctx.stroke();
    for (const [dx, dy] of [[1, 0], [-1, 0], [0, 1], [0, -1]]) {
      ctx.beginPath(); ctx.moveTo(cx + dx * radius * 1.15, cy + dy * radius * 1.15); ctx.lineTo(cx + dx * radius * 1.6, cy + dy * radius * 1.6); ctx.stroke();
    }
    const following = o.recs.slice(1, 1 + FOLLOWING);
    for (const [x, y] of following) labels.reserve(x - 8 * u, y - 8 * u, 16 * u, 16 * u);
    let badge = "1";
    if (o.next_dot) badge += ` · Ø${(2 * o.next_dot.radius_mm).toFixed(1)} mm`;
    // The badge goes first, just outside the ring; then the cue's square is kept clear.
    const b = labels.place(badge, cx, cy, radius * 1.15, `bold ${Math.round(20 * u)}px system-ui, sans-serif`);
    labels.reserve(cx - radius * 1.6, cy - radius * 1.6, radius * 3.2, radius * 3.2);
    if (b && o.next_dot) { // ink swatch: the shade asked for, in the badge's corner
      const g = Math.round(200 * (1 - o.next_dot.shade));
      ctx.fillStyle = `rgb(${g},${g},${g})`; ctx.strokeStyle = "#fff"; ctx.lineWidth = u;
      ctx.beginPath(); ctx.arc(b.x + b.w + 8 * u, b.y + b.h / 2, 6 * u, 0, 2 * Math.PI); ctx.fill(); ctx.stroke();
      labels.reserve(b.x + b.w, b.y, 16 * u, b.h);
    }
    stats.cue = { x: cx, y: cy, diameterCss: 2 * radius * cssPerPx, cssX: cx * cssPerPx, cssY: cy * cssPerPx };
    stats.cuePlanned = o.target ? [o.target[0], o.target[1]] : null;
    recs = 1;
    // The following few: small numbered rings, labels placed without collisions.
    for (const [x, y] of following) {
      ctx.lineWidth = 2 * u; ctx.strokeStyle = "rgba(0,229,255,0.95)";
      ctx.beginPath(); ctx.arc(x, y, 7 * u, 0, 2 * Math.PI); ctx.stroke();
      recs++;
    }
    for (const [x, y, n] of following) labels.place(String(n), x, y, 8 * u, `bold ${Math.round(15 * u)}px system-ui, sans-serif`);
  }
  // The blowout guard: a red ring on every recent too-close dot; an alert on the first frame.
  stats.blowoutsShown = 0;
  for (const bo of o.blowouts || []) {
    ctx.lineWidth = 3 * u; ctx.strokeStyle = "#ff3b30";
    ctx.beginPath(); ctx.arc(bo.x, bo.y, 16 * u, 0, 2 * Math.PI); ctx.stroke();
    labels.reserve(bo.x - 16 * u, bo.y - 16 * u, 32 * u, 32 * u);
    labels.place(`${bo.nearest_mm.toFixed(2)} mm`, bo.x, bo.y, 17 * u, `bold ${Math.round(14 * u)}px system-ui, sans-serif`);
    stats.blowoutsShown++;
    if (!alerted.has(bo.seq)) { alerted.add(bo.seq); stats.blowoutSeqs.push({ seq: bo.seq, frame: o.seq, new: bo.new }); alert_(); }
  }
  if (window.stippleCalib) window.stippleCalib.draw(ctx, o, u); // calibration mode (calib.js)
  stats.labels = labels.css();
  stats.overlaysDrawn++;
  stats.lastSeq = o.seq;
  stats.dotsDrawn = dots;
  stats.recsDrawn = recs;
  stats.targetDrawn = !!o.target;
  stats.paused = o.paused;
  showHeader(o);
  const banner = $("banner");
  if (o.source_status && o.source_status !== "streaming") {
    banner.textContent = o.source_status; banner.className = ""; banner.hidden = false;
  } else if (o.paused) {
    banner.textContent = "PAUSED — P to resume"; banner.className = "paused"; banner.hidden = false;
  } else banner.hidden = true;
  const goal = $("goal");
  // While calibrating the plan is hidden, and so is what it says.
  // What the plan keeps off, each reason once, in its first words (up to the colon).
  const declined = [...new Set((o.declined || []).map((d) => d.reason.split(":")[0]))];
  const said = (o.messages || []).concat(declined.length ? ["not planned on " + declined.join(", ")] : []);
  goal.textContent = o.calibration ? "" : said.join(" · ");
  goal.hidden = !goal.textContent;
}

// A millimetre scale bar in the bottom-left corner (1, 2, 5, 10 or 20 mm, at least 80 CSS px long) and the px/mm to 0.1.
function drawScaleBar(o, u, labels) {
  if (!o.px_per_mm) return;
  const mm = [1, 2, 5, 10, 20].find((m) => m * o.px_per_mm >= 80 * u) || 20;
  const len = mm * o.px_per_mm, x = 12 * u, y = canvas.height - 14 * u;
  const ppm = `${o.px_per_mm.toFixed(1)} px/mm`;
  ctx.font = `${Math.round(12 * u)}px system-ui, sans-serif`;
  const ppmWidth = ctx.measureText(ppm).width;
  const b = { x: x - 6 * u, y: y - 30 * u, w: len + ppmWidth + 24 * u, h: 40 * u };
  ctx.fillStyle = "rgba(0,0,0,0.6)"; ctx.fillRect(b.x, b.y, b.w, b.h);
  ctx.strokeStyle = "#fff"; ctx.lineWidth = 3 * u;
  ctx.beginPath(); ctx.moveTo(x, y - 6 * u); ctx.lineTo(x, y); ctx.lineTo(x + len, y); ctx.lineTo(x + len, y - 6 * u); ctx.stroke();
  ctx.textAlign = "left"; ctx.textBaseline = "bottom";
  ctx.fillStyle = "#ccc"; ctx.fillText(ppm, x + len + 10 * u, y + 2 * u);
  ctx.font = `bold ${Math.round(15 * u)}px system-ui, sans-serif`; ctx.fillStyle = "#fff";
  ctx.fillText(`${mm} mm`, x, y - 8 * u);
  labels.boxes.push(b); labels.placed.push(b);
}

let audio = null;
function alert_() {
  stats.alerts++;
  if ($("t-alert").checked) {
    const s = $("stage"); s.classList.add("flash"); setTimeout(() => s.classList.remove("flash"), 400);
  }
  if ($("t-sound").checked) {
    try {
      audio = audio || new AudioContext();
      const osc = audio.createOscillator(), gain = audio.createGain();
      osc.frequency.value = 880; gain.gain.value = 0.15;
      osc.connect(gain).connect(audio.destination); osc.start(); osc.stop(audio.currentTime + 0.15);
    } catch (e) { /* no audio: the flash still shows */ }
  }
}

function showHeader(o) {
  $("s-density").textContent = o.view_density_per_cm2.toFixed(0);
  $("s-target").textContent = o.target_per_cm2.toFixed(0);
  $("s-left").textContent = o.dots_left;
  $("s-placed").textContent = o.dots_placed;
  $("s-zones").textContent = o.zones.filter((z) => z.kind !== "nogo")
    .map((z) => `${z.name} ${z.density_per_cm2.toFixed(0)}/${z.target_per_cm2.toFixed(0)}${z.goal_reached ? " ✓" : ""}`).join(" · ");
  const close = $("s-close");
  close.hidden = !o.spacing_violations;
  close.textContent = `${o.spacing_violations} too close`;
}

function drawEditing() {
  if (!editing) return;
  const pts = editing.stage === "polygon" ? editing.edge.concat(editPoints) : editPoints;
  if (pts.length === 0) return;
  const u = canvas.width / Math.max(1, canvas.getBoundingClientRect().width);
  ctx.strokeStyle = "#fff"; ctx.fillStyle = "#fff"; ctx.lineWidth = 2 * u;
  ctx.beginPath(); pts.forEach(([x, y], i) => (i ? ctx.lineTo(x, y) : ctx.moveTo(x, y))); ctx.stroke();
  for (const [x, y] of pts) { ctx.beginPath(); ctx.arc(x, y, 4 * u, 0, 2 * Math.PI); ctx.fill(); }
}

function toImage(ev) {
  const r = canvas.getBoundingClientRect();
  return [(ev.clientX - r.left) * canvas.width / r.width, (ev.clientY - r.top) * canvas.height / r.height];
}

canvas.addEventListener("pointerdown", async (ev) => {
  if (picking) {
    setPicking(false);
    const e = await send("POST", "/api/not-a-dot", { point_in_image: toImage(ev) }, "a-msg");
    if (e) $("a-msg").textContent = "Marked: not a dot.";
    return;
  }
  if (editing) editPoints.push(toImage(ev));
});

function setPicking(on) {
  picking = on;
  canvas.classList.toggle("picking", on);
  $("a-notdot").classList.toggle("on", on);
  $("a-msg").textContent = on ? "Tap the detection that is not a dot (Esc cancels)." : "";
}

function startEdit(kind) {
  editing = { kind, stage: kind === "hairline" ? "edge" : "polygon", edge: [] }; editPoints = [];
  $("z-done").hidden = false; $("z-help").hidden = false; $("z-draw").classList.add("on");
  $("z-help").textContent = kind === "hairline"
    ? "Tap along the front edge of the hairline, then Finish edge."
    : "Tap the corners of the zone on the picture, then Finish.";
  $("z-done").textContent = kind === "hairline" ? "Finish edge" : "Finish";
}
function stopEdit() {
  editing = null; editPoints = [];
  $("z-done").hidden = true; $("z-help").hidden = true; $("z-draw").classList.remove("on");
}

// Sends a request; a refusal shows its reason in the element `msg`.
async function send(method, url, body, msg) {
  const res = await fetch(url, { method, headers: { "content-type": "application/json" }, body: body && JSON.stringify(body) });
  const json = await res.json().catch(() => ({}));
  if (!res.ok) { $(msg || "z-msg").textContent = json.error || res.statusText; return null; }
  if (msg) $(msg).textContent = "";
  return json;
}

function showDesign(d) {
  if (!d) return;
  $("c-session").value = String(d.session); $("c-target").value = d.target_density_per_cm2; $("c-spacing").value = d.min_spacing_mm;
  const list = $("z-list");
  list.replaceChildren();
  for (const z of d.zones) {
    const li = document.createElement("li");
    const name = document.createElement("span");
    name.textContent = `${z.name} · ${z.kind}${z.target_density_per_cm2 != null ? ` · ${z.target_density_per_cm2}/cm²` : ""}`;
    const edit = Object.assign(document.createElement("button"), { textContent: "Edit" });
    edit.onclick = async () => {
      const newName = prompt("Zone name", z.name);
      if (newName === null) return;
      const target = z.kind === "nogo" ? "" : prompt("Target dots/cm² (empty: the session's)", z.target_density_per_cm2 ?? "");
      if (target === null) return;
      const body = { name: newName.trim() || z.name };
      if (target !== "") body.target_density_per_cm2 = Number(target);
      showDesign(await send("PATCH", `/api/zones/${encodeURIComponent(z.name)}`, body));
    };
    const del = Object.assign(document.createElement("button"), { textContent: "Delete" });
    del.onclick = async () => showDesign(await send("DELETE", `/api/zones/${encodeURIComponent(z.name)}`));
    li.append(name, edit, del);
    list.append(li);
  }
}

function uniqueName(kind, zones) {
  const base = { fill: "zone", hairline: "hairline", scar: "scar", nogo: "no-go" }[kind] || "zone";
  let n = 1;
  while (zones.some((z) => z.name === (n === 1 ? base : `${base} ${n}`))) n++;
  return n === 1 ? base : `${base} ${n}`;
}

$("z-draw").onclick = () => startEdit($("z-kind").value);
$("z-done").onclick = async () => {
  if (editing && editing.stage === "edge") {
    if (editPoints.length < 2) { $("z-help").textContent = "Tap at least two points along the front edge."; return; }
    editing.edge = editPoints; editPoints = []; editing.stage = "polygon";
    $("z-help").textContent = "Now tap the back of the zone behind the edge, then Finish.";
    $("z-done").textContent = "Finish";
    return;
  }
  const { kind, edge } = editing || {};
  const pts = edge ? edge.concat(editPoints) : editPoints;
  stopEdit();
  if (!kind || pts.length < 3) { $("z-msg").textContent = "A zone needs at least three points."; return; }
  const d = await (await fetch("/api/design")).json();
  const name = (prompt("Zone name", uniqueName(kind, d.zones)) || "").trim() || uniqueName(kind, d.zones);
  const body = { name, kind, points_in_image: pts };
  if (kind === "hairline") body.front_edge_in_image = edge;
  showDesign(await send("POST", "/api/zones", body));
};
$("z-clear").onclick = async () => { if (confirm("Delete every zone?")) showDesign(await send("DELETE", "/api/zones")); };
$("z-save").onclick = async () => {
  const name = $("z-name").value.trim();
  const saved = await send("POST", "/api/design/save", name ? { name } : undefined, "z-msg");
  if (saved) $("z-msg").textContent = `Saved ${saved.path}`;
};
$("c-apply").onclick = async () => {
  const d = await (await fetch("/api/design")).json();
  d.session = Number($("c-session").value);
  d.target_density_per_cm2 = Number($("c-target").value);
  d.min_spacing_mm = Number($("c-spacing").value);
  showDesign(await send("PUT", "/api/design", d, "z-msg"));
};
// Who is in the session (written into the recording's metadata for the trainer's report).
function showPeople(p) {
  if (!p) return;
  $("p-client").value = p.client || ""; $("p-artist").value = p.artist || "";
}
$("p-apply").onclick = async () => {
  const v = (id) => $(id).value.trim() || null;
  const p = await send("PUT", "/api/session/people", { client: v("p-client"), artist: v("p-artist") }, "p-msg");
  if (p) { showPeople(p); $("p-msg").textContent = "Names set: a recording takes them."; }
};
fetch("/api/session/people").then((r) => r.json()).then(showPeople).catch(() => {});
$("t-heat").onchange = () => { $("legend").hidden = !$("t-heat").checked; };

// The artist's controls, also on keys (a USB foot pedal types one: PageDown, Space or N).
const actions = {
  next: () => send("POST", "/api/next", undefined, "a-msg"),
  undo: async () => { const e = await send("POST", "/api/undo", undefined, "a-msg"); if (e) $("a-msg").textContent = "Last placed dot undone."; },
  pause: async () => {
    const paused = !(lastOverlay && lastOverlay.paused);
    const e = await send("POST", "/api/pause", { paused }, "a-msg");
    if (e) $("a-pause").textContent = paused ? "Resume" : "Pause";
  },
  notdot: () => setPicking(!picking),
};
$("a-next").onclick = actions.next;
$("a-undo").onclick = actions.undo;
$("a-pause").onclick = actions.pause;
$("a-notdot").onclick = actions.notdot;
document.addEventListener("keydown", (ev) => {
  const t = ev.target;
  if (t && (t.tagName === "INPUT" || t.tagName === "SELECT" || t.tagName === "TEXTAREA")) return;
  const k = ev.key;
  let done = true;
  if (k === "n" || k === "N" || k === " " || k === "PageDown" || k === "ArrowRight") actions.next();
  else if (k === "u" || k === "U" || k === "PageUp" || k === "ArrowLeft") actions.undo();
  else if (k === "p" || k === "P" || k === "Pause") actions.pause();
  else if (k === "x" || k === "X") actions.notdot();
  else if (k === "d" || k === "D") $("t-dots").checked = !$("t-dots").checked;
  else if (k === "m" || k === "M") { $("t-heat").checked = !$("t-heat").checked; $("t-heat").onchange(); }
  else if (k === "Escape") { setPicking(false); stopEdit(); }
  else done = false;
  if (done) ev.preventDefault();
});

async function pollStatus() {
  try {
    const s = await (await fetch("/api/status")).json();
    $("s-fps").textContent = s.fps.toFixed(0);
    $("s-lat").textContent = `${s.latency_ms.p50.toFixed(0)}/${s.latency_ms.p99.toFixed(0)}`;
    $("s-placed").textContent = s.dots_placed;
    $("a-pause").textContent = s.paused ? "Resume" : "Pause";
    const src = $("s-source");
    src.textContent = s.source_connected ? s.source : s.source_status;
    src.classList.toggle("down", !s.source_connected);
    const rec = $("s-rec"), r = s.recording;
    rec.hidden = !r;
    if (r) {
      rec.textContent = r.error ? `REC stopped: ${r.error}` : `REC ${r.frames_written} frames, ${r.frames_dropped} dropped`;
      rec.classList.toggle("down", !!r.error || r.frames_dropped > 0);
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
