#!/usr/bin/env python3
"""Draws dermoscope openings found with and without the openings model beside the truth.

Renders one frame with `stipple synth --view dermoscope`, runs `stipple detect --px-per-mm P
--format jsonl` with the bundled models and with `--no-model`, and writes the two side by side:
green circles are the true openings (one per follicular unit), blue the true pigment dots, red
crosses what the detector found.

    .venv/bin/python scripts/draw_openings.py --stipple target/release/stipple --seed 9005 \\
        --out docs/dermoscope/detect-seed9005.jpg
"""
import argparse
import json
import os
import subprocess
import tempfile

import cv2
import numpy as np


def detect(stipple, png, ppm, extra):
    out = subprocess.run([stipple, "detect", "--px-per-mm", str(ppm), "--format", "jsonl", *extra, png],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out.splitlines()[0])["detections"]


def draw(img, truth, dets, label):
    im = img.copy()
    ppm = truth["px_per_mm"]
    for u in truth["units"]:
        cv2.circle(im, (int(u["x"]), int(u["y"])), int(0.08 * ppm), (0, 200, 0), 4)
    for p in truth["pigment"]:
        cv2.circle(im, (int(p["x"]), int(p["y"])), int(p["radius"]) + 6, (255, 120, 0), 4)
    for d in dets:
        cv2.drawMarker(im, (int(d["x"]), int(d["y"])), (0, 0, 255), cv2.MARKER_CROSS, 40, 5)
    cv2.putText(im, label, (20, im.shape[0] - 30), cv2.FONT_HERSHEY_SIMPLEX, 1.6, (255, 255, 255), 4)
    return im


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--stipple", default="target/release/stipple")
    ap.add_argument("--seed", type=int, default=9005)
    ap.add_argument("--out", default="docs/dermoscope/detect-seed9005.jpg")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([args.stipple, "synth", "--seed", str(args.seed), "--view", "dermoscope", "--out", tmp],
                       check=True, capture_output=True)
        png = os.path.join(tmp, "000.png")
        truth = json.load(open(os.path.join(tmp, "000.json")))
        img = cv2.imread(png)
        ppm = truth["px_per_mm"]
        fused = detect(args.stipple, png, ppm, [])
        classical = detect(args.stipple, png, ppm, ["--no-model"])
    both = np.hstack([draw(img, truth, classical, "--no-model (shaft tracer, pits)"),
                      draw(img, truth, fused, "default (openings model fused)")])
    h, w = both.shape[:2]
    both = cv2.resize(both, (w // 2, h // 2), interpolation=cv2.INTER_AREA)
    cv2.imwrite(args.out, both, [cv2.IMWRITE_JPEG_QUALITY, 85])
    print(f"{args.out}: {len(truth['units'])} units, {len(truth['pigment'])} pigment dots; "
          f"found {len(classical)} without the model, {len(fused)} with it")


if __name__ == "__main__":
    main()
