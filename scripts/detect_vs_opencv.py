#!/usr/bin/env python3
"""Stipple's classical detector side by side with OpenCV's SimpleBlobDetector.

Renders evaluation frames with `stipple synth` (seeds that no threshold was tuned on), runs
`stipple detect --format jsonl` and OpenCV's SimpleBlobDetector (configured for the known
scale) on the same frames in the same run, scores both with the same scorer (`stipple score`)
and times both per frame (detection only, image already in memory for OpenCV; whole-process
time divided by frames for Stipple, so Stipple's figure includes decoding the PNG).

    bash scripts/setup.sh --peers
    cargo build --release
    .venv/bin/python scripts/detect_vs_opencv.py --stipple target/release/stipple

Prints one line per (view, detector) and a speed table.
"""
import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time

import cv2
import numpy as np

# Scale-aware, fair settings for the SimpleBlobDetector: dark blobs of the sizes SMP dots and
# follicle tips have (radius 0.05-0.35 mm), thresholds swept over the full range, merged
# within a unit's size.
MIN_RADIUS_MM = 0.05
MAX_RADIUS_MM = 0.35
MIN_DIST_MM = 0.2
PIGMENT_MIN_RADIUS_MM = 0.105


def opencv_detector(px_per_mm):
    p = cv2.SimpleBlobDetector_Params()
    p.minThreshold = 10
    p.maxThreshold = 220
    p.thresholdStep = 10
    p.minRepeatability = 2
    p.minDistBetweenBlobs = max(1.0, MIN_DIST_MM * px_per_mm)
    p.filterByColor = True
    p.blobColor = 0
    p.filterByArea = True
    p.minArea = max(1.0, math.pi * (MIN_RADIUS_MM * px_per_mm) ** 2)
    p.maxArea = math.pi * (MAX_RADIUS_MM * px_per_mm) ** 2
    p.filterByCircularity = False
    p.filterByInertia = True
    p.minInertiaRatio = 0.2
    p.filterByConvexity = False
    return cv2.SimpleBlobDetector_create(p)


def run_opencv(frames, px_per_mm_of):
    lines, elapsed = [], 0.0
    for path in frames:
        ppm = px_per_mm_of[path]
        gray = cv2.imread(path, cv2.IMREAD_GRAYSCALE)
        det = opencv_detector(ppm)
        t0 = time.perf_counter()
        kps = det.detect(gray)
        elapsed += time.perf_counter() - t0
        dets = []
        for k in kps:
            r = k.size / 2.0
            kind = "pigment" if r / ppm >= PIGMENT_MIN_RADIUS_MM else "follicle"
            dets.append({"x": k.pt[0] + 0.5, "y": k.pt[1] + 0.5, "radius": r, "kind": kind, "score": 1.0})
        h, w = gray.shape
        lines.append({"image": path, "width": w, "height": h, "px_per_mm": ppm, "detections": dets})
    return lines, elapsed


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--stipple", default="target/release/stipple")
    ap.add_argument("--seed", type=int, default=9000, help="first evaluation seed")
    ap.add_argument("--count", type=int, default=12)
    ap.add_argument("--views", default="rig,dermoscope")
    args = ap.parse_args()
    cv2.setNumThreads(1)
    work = tempfile.mkdtemp(prefix="stipple-eval-")
    for view in args.views.split(","):
        out = os.path.join(work, view)
        subprocess.run([args.stipple, "synth", "--seed", str(args.seed), "--count", str(args.count),
                        "--view", view, "--out", out], check=True)
        frames = sorted(os.path.join(out, f) for f in os.listdir(out) if f.endswith((".png", ".jpg")))
        ppm_of = {}
        for f in frames:
            with open(os.path.splitext(f)[0] + ".json") as fh:
                ppm_of[f] = json.load(fh)["px_per_mm"]
        # Stipple: one process per scale (frames of one view may differ in px/mm).
        ours = os.path.join(work, f"{view}-stipple.jsonl")
        t_ours = 0.0
        with open(ours, "w") as fh:
            for f in frames:
                t0 = time.perf_counter()
                res = subprocess.run([args.stipple, "detect", "--px-per-mm", str(ppm_of[f]), "--format", "jsonl", f],
                                     check=True, capture_output=True, text=True)
                t_ours += time.perf_counter() - t0
                fh.write(res.stdout)
        lines, t_cv = run_opencv(frames, ppm_of)
        theirs = os.path.join(work, f"{view}-opencv.jsonl")
        with open(theirs, "w") as fh:
            for line in lines:
                fh.write(json.dumps(line) + "\n")
        for name, path in (("stipple", ours), ("opencv", theirs)):
            res = subprocess.run([args.stipple, "score", "--name", f"{view}/{name}", path],
                                 check=True, capture_output=True, text=True)
            sys.stdout.write(res.stdout)
        n = len(frames)
        print(f"{view}: per frame  stipple {1000 * t_ours / n:.1f} ms (whole process incl. PNG decode)  "
              f"opencv {1000 * t_cv / n:.1f} ms (detect only)  ratio {t_cv / max(t_ours, 1e-9):.1f}x")


if __name__ == "__main__":
    main()
