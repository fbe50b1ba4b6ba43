#!/usr/bin/env python3
"""Speed of Stipple's classical detector against OpenCV's SimpleBlobDetector, side by side.

Runs `cargo bench --bench detect` (criterion) and then times OpenCV's SimpleBlobDetector
(scripts/detect_vs_opencv.py's scale-aware settings, one thread) on the very same frames
(`stipple synth --seed 4242 --px-per-mm 20` at 640x480, 1280x720 and 1920x1080), and prints the
medians and the ratio.

    bash scripts/setup.sh --peers
    .venv/bin/python scripts/bench_detect_vs_opencv.py
"""
import os
import statistics
import subprocess
import sys
import tempfile
import time

import cv2

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_common import criterion_median_ms, run_bench_and_build  # noqa: E402
from detect_vs_opencv import opencv_detector  # noqa: E402

SIZES = ["640x480", "1280x720", "1920x1080"]
PX_PER_MM = 20.0
RUNS = 15


def main():
    stipple = run_bench_and_build("detect", 4)
    cv2.setNumThreads(1)
    work = tempfile.mkdtemp(prefix="stipple-bench-")
    print(f"{'size':>10} {'stipple (ms)':>13} {'opencv (ms)':>12} {'ratio':>6}")
    for size in SIZES:
        out = os.path.join(work, size)
        subprocess.run([stipple, "synth", "--seed", "4242", "--size", size, "--px-per-mm", str(PX_PER_MM),
                        "--out", out], check=True)
        gray = cv2.imread(os.path.join(out, "000.png"), cv2.IMREAD_GRAYSCALE)
        det = opencv_detector(PX_PER_MM)
        times = []
        for _ in range(RUNS):
            t0 = time.perf_counter()
            det.detect(gray)
            times.append(time.perf_counter() - t0)
        ours = criterion_median_ms("detect", "blobs", size)
        theirs = 1000 * statistics.median(times)
        print(f"{size:>10} {ours:>13.2f} {theirs:>12.1f} {theirs / ours:>6.1f}x")


if __name__ == "__main__":
    main()
