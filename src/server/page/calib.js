// Stipple live page, calibration mode: start/stop/save through /api/calibration/*, and, on
// every frame that carries the calibration state, the detected corners and the coverage grid
// drawn over the picture plus the side panel (views, coverage, tilts, RMS, what is missing).
// app.js calls window.stippleCalib.draw(ctx, overlay, px) after drawing each frame's overlay.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const stats = window.stippleStats || {};
  Object.assign(stats, { calibActive: false, calibCornersDrawn: 0, calibViews: 0, calibReady: false });
  let state = null; // the latest CalibSnapshot

  async function call(method, url, body) {
    const res = await fetch(url, { method, headers: { "content-type": "application/json" },
      body: body && JSON.stringify(body) });
    const json = await res.json().catch(() => ({}));
    if (!res.ok) { $("k-msg").textContent = json.error || res.statusText; return null; }
    $("k-msg").textContent = "";
    return json;
  }

  function drawGrid(c, s) {
    // The coverage grid: grey = not yet covered, green = covered (brighter with more views).
    const g = c.getContext("2d");
    const cols = s.coverage_cols, rows = s.coverage_rows, cells = (s.status && s.status.cells) || [];
    g.clearRect(0, 0, c.width, c.height);
    const cw = c.width / cols, ch = c.height / rows;
    for (let r = 0; r < rows; r++) for (let k = 0; k < cols; k++) {
      const n = cells[r * cols + k] || 0;
      g.fillStyle = n ? `rgba(124,252,0,${0.25 + 0.6 * Math.min(n, 4) / 4})` : "#3a3a3a";
      g.fillRect(k * cw + 1, r * ch + 1, cw - 2, ch - 2);
      if (n) { g.fillStyle = "#000"; g.font = "14px system-ui"; g.fillText(String(n), k * cw + 5, r * ch + 17); }
    }
  }

  function show(s) {
    state = s;
    stats.calibActive = !!(s && s.active);
    const on = stats.calibActive;
    document.body.classList.toggle("calibrating", on);
    $("k-setup").hidden = on;
    $("k-panel").hidden = !on;
    if (!s) return;
    if (s.saved_to) $("k-saved").textContent = `Saved ${s.saved_to}`;
    if (!on) return;
    const st = s.status;
    stats.calibViews = st ? st.views : 0;
    stats.calibReady = !!(st && st.ready);
    drawGrid($("k-grid"), s);
    const dirs = s.tilt_directions.map((d, i) => `${st && st.tilts[i] ? "✓" : "·"} ${d}`).join("  ");
    const k = s.intrinsics;
    $("k-stats").innerHTML =
      `<b>${st ? st.views : 0}</b>/${s.max_views} views · <b>${st ? Math.round(100 * st.coverage) : 0}%</b> covered<br>` +
      `RMS <b>${st && st.rms_px != null ? st.rms_px.toFixed(3) : "–"}</b> px` +
      (k ? ` · fx ${k.fx.toFixed(1)} fy ${k.fy.toFixed(1)}` : "") +
      `<br><span class="tilts">tilted: ${dirs}</span>`;
    $("k-last").textContent = s.last ? s.last.message : "waiting for a frame…";
    // The scale at the skin: from the board on the scalp once taken, else the views' stand-in.
    const sc = s.scale, onScalp = !!(sc && sc.source === "plane");
    stats.calibPlane = onScalp;
    stats.calibPlaneStep = !!s.plane_step;
    const scaleEl = $("k-scale");
    scaleEl.className = onScalp ? "" : "stand-in";
    scaleEl.innerHTML = !sc ? "px/mm at the skin: after 3 views"
      : `px/mm <b>${sc.px_per_mm.toFixed(2)}</b> ± ${sc.sigma_px_per_mm.toFixed(2)} at ${Math.round(sc.working_distance_mm)} mm · ` +
        (onScalp ? "measured on the board on the scalp" : "from the calibration views, not the skin");
    const plane = $("k-plane");
    plane.classList.toggle("waiting", !!s.plane_step);
    plane.textContent = s.plane_step ? "Lay the board on the scalp and hold still…"
      : onScalp ? "Retake the board on the scalp" : "Board on the scalp";
    const verdict = $("k-verdict");
    verdict.className = s.verdict && s.verdict.good_for_smp ? "help good" : "help";
    verdict.textContent = s.verdict ? [s.verdict.summary].concat(s.verdict.todo).join(" · ") : "";
    const save = $("k-save");
    const fromViews = $("k-fromviews").checked;
    stats.calibSavable = stats.calibReady && (onScalp || fromViews);
    save.disabled = !stats.calibSavable;
    const why = st ? st.missing : "no frame seen yet";
    save.title = why || "save the calibration";
    $("k-missing").textContent = !stats.calibReady ? `To save: ${why}`
      : onScalp || fromViews ? "Enough views: save when you like (more views still help)."
      : "Enough views. Last step: lay the board flat on the scalp and press 'Board on the scalp'.";
  }

  function draw(ctx, o, px) {
    const s = o.calibration;
    if (!s) { if (stats.calibActive) show({ active: false, saved_to: state && state.saved_to }); return; }
    show(s);
    const w = ctx.canvas.width, h = ctx.canvas.height;
    // Coverage cells over the picture: uncovered cells tinted, so the artist sees where to go.
    const st = s.status, cols = s.coverage_cols, rows = s.coverage_rows;
    const cw = w / cols, ch = h / rows;
    ctx.lineWidth = px;
    for (let r = 0; r < rows; r++) for (let k = 0; k < cols; k++) {
      const n = st ? st.cells[r * cols + k] : 0;
      ctx.fillStyle = n ? "rgba(124,252,0,0.10)" : "rgba(255,80,80,0.16)";
      ctx.fillRect(k * cw, r * ch, cw, ch);
      ctx.strokeStyle = "rgba(255,255,255,0.25)";
      ctx.strokeRect(k * cw, r * ch, cw, ch);
    }
    // Detected corners (pixel centres are integers in calibration, half-integers on a canvas),
    // joined row by row like OpenCV's drawChessboardCorners.
    let drawn = 0;
    const last = s.last;
    if (last && last.corners_in_image.length && s.board) {
      const cols = s.board.inner_cols, pts = last.corners_in_image;
      const colours = ["#ff4040", "#ffa040", "#ffff40", "#40ff40", "#40ffff", "#4080ff", "#c040ff"];
      for (let r = 0; r * cols < pts.length; r++) {
        ctx.strokeStyle = colours[r % colours.length];
        ctx.lineWidth = 2 * px;
        ctx.beginPath();
        for (let c = 0; c < cols; c++) {
          const [x, y] = pts[r * cols + c];
          c ? ctx.lineTo(x + 0.5, y + 0.5) : ctx.moveTo(x + 0.5, y + 0.5);
        }
        ctx.stroke();
        for (let c = 0; c < cols; c++) {
          const [x, y] = pts[r * cols + c];
          ctx.beginPath(); ctx.arc(x + 0.5, y + 0.5, 4 * px, 0, 2 * Math.PI); ctx.stroke();
          drawn++;
        }
      }
    }
    stats.calibCornersDrawn = drawn;
    // A status line on the picture itself, readable from the chair.
    const text = `${st ? st.views : 0} views · ${st ? Math.round(100 * st.coverage) : 0}% covered · RMS ${st && st.rms_px != null ? st.rms_px.toFixed(3) : "–"} px · ${last ? last.message : ""}`;
    ctx.font = `bold ${Math.round(14 * px)}px system-ui, sans-serif`;
    ctx.textAlign = "left"; ctx.textBaseline = "top";
    const tw = ctx.measureText(text).width;
    ctx.fillStyle = "rgba(0,0,0,0.65)"; ctx.fillRect(8 * px, 8 * px, tw + 16 * px, 24 * px);
    ctx.fillStyle = last && last.kept ? "#7CFC00" : "#fff";
    ctx.fillText(text, 16 * px, 12 * px);
  }

  $("k-start").onclick = async () => show(await call("POST", "/api/calibration/start",
    { board: $("k-board").value.trim(), square_mm: Number($("k-square").value) }));
  $("k-stop").onclick = async () => show(await call("POST", "/api/calibration/stop"));
  $("k-plane").onclick = async () => show(await call("POST", "/api/calibration/plane", {}));
  $("k-fromviews").onchange = () => state && show(state);
  $("k-save").onclick = async () => {
    const name = $("k-name").value.trim();
    const body = { px_per_mm_from_views: $("k-fromviews").checked };
    if (name) body.name = name;
    const saved = await call("POST", "/api/calibration/save", body);
    if (saved) {
      const sc = saved.scale;
      $("k-saved").textContent = `Saved ${saved.path}: RMS ${saved.calibration.rms_px.toFixed(3)} px, ` +
        `${saved.calibration.px_per_mm.toFixed(2)} px/mm` + (sc ? ` ± ${sc.sigma_px_per_mm.toFixed(2)}` : "") +
        `. ${saved.verdict.summary}`;
    }
  };
  fetch("/api/calibration").then((r) => r.json()).then(show).catch(() => {});
  window.stippleCalib = { draw };
})();
