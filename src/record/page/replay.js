// Stipple replay controls: loaded by app.js when /api/replay answers (stipple replay only).
// Play, pause, step, seek (slider), speed, and recorded vs re-run overlay.
"use strict";

(() => {
  const aside = document.getElementById("controls");
  const sec = document.createElement("section");
  sec.id = "replay";
  sec.innerHTML = `
    <h2>Replay</h2>
    <div class="row">
      <button id="r-back" title="Previous frame (←)">‹ Prev</button>
      <button id="r-play" title="Play / pause (space)">Play</button>
      <button id="r-next" title="Next frame (→)">Next ›</button>
    </div>
    <input id="r-seek" type="range" min="0" max="0" value="0" step="1" aria-label="Seek">
    <p id="r-pos" class="help"></p>
    <label>Speed
      <select id="r-speed"><option>0.25</option><option>0.5</option><option selected>1</option><option>2</option><option>4</option></select>
    </label>
    <label id="r-view-l" hidden>Overlay
      <select id="r-view"><option value="recorded">recorded</option><option value="rerun">re-run</option></select>
    </label>
    <p id="r-rerun" class="help"></p>`;
  aside.prepend(sec);
  const $ = (id) => document.getElementById(id);
  let state = null;
  let dragging = false;

  async function post(body) {
    const res = await fetch("/api/replay", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
    if (res.ok) show(await res.json());
  }

  function show(s) {
    state = s;
    $("r-play").textContent = s.playing ? "Pause" : "Play";
    $("r-seek").max = String(Math.max(0, s.frames - 1));
    if (!dragging) $("r-seek").value = String(s.index);
    $("r-pos").textContent = `frame ${s.index + 1}/${s.frames} · seq ${s.seq} · ${s.t_s.toFixed(1)} / ${s.duration_s.toFixed(1)} s` +
      (s.finished ? "" : " · truncated file");
    if (s.rerun) {
      $("r-view-l").hidden = false;
      const r = s.rerun, m = r.summary;
      $("r-rerun").textContent = r.error ? `re-run failed: ${r.error}` :
        `re-run ${r.done}/${s.frames}: detections identical on ${m.detections_identical}/${m.frames} frames, ` +
        `${m.detections_rerun} vs ${m.detections_recorded} dots, placed ${m.placed_rerun} vs ${m.placed_recorded}`;
    }
  }

  $("r-play").onclick = () => post({ action: state && state.playing ? "pause" : "play" });
  $("r-back").onclick = () => post({ action: "step", by: -1 });
  $("r-next").onclick = () => post({ action: "step", by: 1 });
  $("r-seek").oninput = () => { dragging = true; };
  $("r-seek").onchange = () => { dragging = false; post({ action: "seek", index: Number($("r-seek").value) }); };
  $("r-speed").onchange = () => post({ action: "speed", speed: Number($("r-speed").value) });
  $("r-view").onchange = () => post({ action: "view", view: $("r-view").value });
  document.addEventListener("keydown", (ev) => {
    if (ev.target instanceof HTMLInputElement || ev.target instanceof HTMLSelectElement) return;
    if (ev.key === " ") { ev.preventDefault(); $("r-play").click(); }
    else if (ev.key === "ArrowLeft") $("r-back").click();
    else if (ev.key === "ArrowRight") $("r-next").click();
  });

  async function poll() {
    try { show(await (await fetch("/api/replay")).json()); } catch (e) { /* server gone */ }
    setTimeout(poll, 500);
  }
  poll();
})();
