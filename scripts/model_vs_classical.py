#!/usr/bin/env python3
"""Fused detection (blobs + the bundled model) side by side with `--no-model` and OpenCV.

Renders evaluation frames with `stipple synth` (seeds 9000+, never used in training, which
uses 20000+), then in the same run: `stipple detect` (bundled model), `stipple detect
--no-model`, and OpenCV's SimpleBlobDetector (scripts/detect_vs_opencv.py's settings); scores all
three with `stipple score` and prints one line each, plus per-frame times.

    bash scripts/setup.sh --peers
    cargo build --release
    .venv/bin/python scripts/model_vs_classical.py --stipple target/release/stipple
    .venv/bin/python scripts/model_vs_classical.py --views rig --count 24 --colours alternate

`stipple score` counts only the dots each frame shows (CIELAB contrast to the skin around them,
see src/eval/visible.rs) and prints each detector's line per Fitzpatrick group (I-II, III-IV,
V-VI) under its overall line. `--colours alternate` renders rig frames with the held-out ink and
hair model that nothing was fitted on.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from detect_vs_opencv import run_opencv  # noqa: E402


def run_stipple(stipple, frames, ppm_of, extra):
    lines, elapsed = [], 0.0
    for f in frames:
        t0 = time.perf_counter()
        res = subprocess.run([stipple, "detect", "--px-per-mm", str(ppm_of[f]), "--format", "jsonl", *extra, f],
                             check=True, capture_output=True, text=True)
        elapsed += time.perf_counter() - t0
        lines.append(res.stdout)
    return "".join(lines), elapsed


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--stipple", default="target/release/stipple")
    ap.add_argument("--seed", type=int, default=9000, help="first evaluation seed")
    ap.add_argument("--count", type=int, default=12)
    ap.add_argument("--views", default="rig,dermoscope")
    ap.add_argument("--model", help="another model file for the fused run")
    ap.add_argument("--colours", default="standard", choices=["standard", "alternate"],
                    help="ink and hair model of rig frames")
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="stipple-model-eval-")
    print(f"seeds {args.seed}-{args.seed + args.count - 1}, colours {args.colours}")
    for view in args.views.split(","):
        out = os.path.join(work, view)
        subprocess.run([args.stipple, "synth", "--seed", str(args.seed), "--count", str(args.count),
                        "--view", view, "--out", out, "--colours", args.colours], check=True)
        frames = sorted(os.path.join(out, f) for f in os.listdir(out) if f.endswith((".png", ".jpg")))
        ppm_of = {}
        for f in frames:
            with open(os.path.splitext(f)[0] + ".json") as fh:
                ppm_of[f] = json.load(fh)["px_per_mm"]
        fused_flags = ["--model", args.model] if args.model else []
        runs = {}
        text, t_fused = run_stipple(args.stipple, frames, ppm_of, fused_flags)
        runs["fused"] = text
        text, t_classical = run_stipple(args.stipple, frames, ppm_of, ["--no-model"])
        runs["no-model"] = text
        lines, t_cv = run_opencv(frames, ppm_of)
        runs["opencv"] = "".join(json.dumps(line) + "\n" for line in lines)
        for name, text in runs.items():
            path = os.path.join(work, f"{view}-{name}.jsonl")
            with open(path, "w") as fh:
                fh.write(text)
            res = subprocess.run([args.stipple, "score", "--name", f"{view}/{name}", path],
                                 check=True, capture_output=True, text=True)
            sys.stdout.write(res.stdout)
        n = len(frames)
        print(f"{view}: per frame  fused {1000 * t_fused / n:.0f} ms  no-model {1000 * t_classical / n:.0f} ms "
              f"(whole process: PNG decode, model load, detection)  opencv {1000 * t_cv / n:.1f} ms (detect only)")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
