#!/usr/bin/env python3
"""Compare `stipple calibrate` with OpenCV's calibrateCamera on the same images, same run.

Renders board views through a known camera with `stipple synth-board`, calibrates them with
`stipple calibrate --format json` and with OpenCV (findChessboardCorners + cornerSubPix +
calibrateCamera, the standard recipe of OpenCV's tutorial), and prints both against the truth.
With --real DIR it also calibrates real photos (OpenCV's left01..left14.jpg and
right01..right14.jpg, the two cameras of a stereo pair) with both.

    python3 -m venv /tmp/venv-calib && /tmp/venv-calib/bin/pip install opencv-python-headless numpy
    cargo build --release
    /tmp/venv-calib/bin/python scripts/calib_vs_opencv.py --stipple target/release/stipple \
        --seeds 2024 77 --real /path/to/opencv/samples/data
"""

import argparse
import glob
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

import cv2
import numpy as np

BOARD = (9, 6)
SQUARE_MM = 3.0
GRID_STEP_PX = 20


def child_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def stipple_calibrate(exe, images):
    t0, c0 = time.perf_counter(), child_cpu()
    out = subprocess.run(
        [exe, "calibrate", "--board", "9x6", "--square-mm", str(SQUARE_MM), "--format", "json", *images],
        check=True, capture_output=True, text=True,
    )
    dt, cpu = time.perf_counter() - t0, child_cpu() - c0
    j = json.loads(out.stdout)
    k = np.array([[j["fx"], 0, j["cx"]], [0, j["fy"], j["cy"]], [0, 0, 1.0]])
    d = np.array([j["k1"], j["k2"], j["p1"], j["p2"], j["k3"]])
    return dict(K=k, dist=d, rms=j["rms_px"], used=j["views_used"], time=dt, cpu=cpu)


def opencv_calibrate(images):
    t0, c0 = time.perf_counter(), time.process_time()
    objp = np.zeros((BOARD[0] * BOARD[1], 3), np.float32)
    objp[:, :2] = np.mgrid[0:BOARD[0], 0:BOARD[1]].T.reshape(-1, 2) * SQUARE_MM
    criteria = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 30, 0.001)
    obj_pts, img_pts, size = [], [], None
    for path in images:
        gray = cv2.imread(path, cv2.IMREAD_GRAYSCALE)
        size = gray.shape[::-1]
        ok, corners = cv2.findChessboardCorners(gray, BOARD, None)
        if not ok:
            continue
        corners = cv2.cornerSubPix(gray, corners, (11, 11), (-1, -1), criteria)
        obj_pts.append(objp)
        img_pts.append(corners)
    rms, k, d, _, _ = cv2.calibrateCamera(obj_pts, img_pts, size, None, None)
    dt, cpu = time.perf_counter() - t0, time.process_time() - c0
    return dict(K=k, dist=d.ravel()[:5], rms=rms, used=len(obj_pts), time=dt, cpu=cpu)


def displacement(k, d, pts):
    """The distortion map of a model: where undistortion moves each pixel (px, own intrinsics)."""
    und = cv2.undistortPoints(pts.reshape(-1, 1, 2), k, d, P=k,
                              criteria=(cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 100, 1e-14))
    return und.reshape(-1, 2) - pts


def distortion_only(est, truth_k, truth_d, pts):
    """The distortion coefficients alone: the true ray through each pixel, distorted by the
    estimated and by the true coefficients, both mapped to pixels by the true intrinsics (px)."""
    n = cv2.undistortPoints(pts.reshape(-1, 1, 2), truth_k, truth_d,
                            criteria=(cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 100, 1e-14))
    obj = np.hstack([n.reshape(-1, 2), np.ones((len(pts), 1))]).reshape(-1, 1, 3)
    a, _ = cv2.projectPoints(obj, np.zeros(3), np.zeros(3), truth_k, est["dist"])
    b, _ = cv2.projectPoints(obj, np.zeros(3), np.zeros(3), truth_k, truth_d)
    return np.linalg.norm((a - b).reshape(-1, 2), axis=1)


def rays(k, d, pts):
    """Unit rays of pixels under a model."""
    n = cv2.undistortPoints(pts.reshape(-1, 1, 2), k, d,
                            criteria=(cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 100, 1e-14)).reshape(-1, 2)
    r = np.hstack([n, np.ones((len(n), 1))])
    return r / np.linalg.norm(r, axis=1, keepdims=True)


def model_error(est, truth_k, truth_d, pts):
    """Per pixel: take the true ray through it, rotate it by the rotation that best aligns the two
    models' rays (Kabsch; a rotation of the camera frame is absorbed by the board poses and cannot
    be observed), project it with the estimated model, and measure how far it lands (px)."""
    a = rays(truth_k, truth_d, pts)
    b = rays(est["K"], est["dist"], pts)
    u, _, vt = np.linalg.svd(a.T @ b)
    s = np.diag([1.0, 1.0, np.sign(np.linalg.det(u @ vt))])
    r = (u @ s @ vt).T  # b ≈ r a
    proj, _ = cv2.projectPoints((a @ r.T).reshape(-1, 1, 3), np.zeros(3), np.zeros(3), est["K"], est["dist"])
    return np.linalg.norm(proj.reshape(-1, 2) - pts, axis=1)


def outline(corners):
    c, r = BOARD
    ring = [corners[i] for i in range(c)]
    ring += [corners[j * c + c - 1] for j in range(1, r)]
    ring += [corners[(r - 1) * c + i] for i in range(c - 2, -1, -1)]
    ring += [corners[j * c] for j in range(r - 2, 0, -1)]
    return np.array(ring, np.float32).reshape(-1, 1, 2)


def distortion_error(est, truth_k, truth_d, width, height, polys):
    xs, ys = np.meshgrid(np.arange(0, width + 1, GRID_STEP_PX), np.arange(0, height + 1, GRID_STEP_PX))
    pts = np.stack([xs.ravel(), ys.ravel()], 1).astype(np.float64)
    covered = np.array([any(cv2.pointPolygonTest(p, (float(x), float(y)), False) >= 0 for p in polys) for x, y in pts])
    dmap = np.linalg.norm(displacement(est["K"], est["dist"], pts) - displacement(truth_k, truth_d, pts), axis=1)
    model = model_error(est, truth_k, truth_d, pts)
    only = distortion_only(est, truth_k, truth_d, pts)
    return (only[covered].max(), only.max(), dmap[covered].max(), dmap.max(), dmap.mean(), model[covered].max(), model.max())


def synthetic(exe, seed, count):
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([exe, "synth-board", "--seed", str(seed), "--out", tmp, "--count", str(count)], check=True)
        truth = json.load(open(os.path.join(tmp, "truth.json")))
        images = sorted(glob.glob(os.path.join(tmp, "*.png")))
        results = {"stipple": stipple_calibrate(exe, images), "OpenCV": opencv_calibrate(images)}
    cam = truth["camera"]
    ki, di = cam["intrinsics"], cam["distortion"]
    tk = np.array([[ki["fx"], 0, ki["cx"]], [0, ki["fy"], ki["cy"]], [0, 0, 1.0]])
    td = np.array([di["k1"], di["k2"], di["p1"], di["p2"], di["k3"]])
    polys = [outline(v["corners"]) for v in truth["views"]]
    print(f"\n### Synthetic: seed {seed}, {count} views, {cam['image_width']}x{cam['image_height']}\n")
    print("| tool | fx err | fy err | cx err | cy err | distortion coeff. err, covered / full | "
          "distortion map err, max covered / max full / mean full | model reprojection err, covered / full | RMS | views | wall / CPU time |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name, r in results.items():
        k = r["K"]
        ocov, ofull, dcov, dfull, dmean, mcov, mfull = distortion_error(r, tk, td, cam["image_width"], cam["image_height"], polys)
        print(f"| {name} | {100 * (k[0, 0] / tk[0, 0] - 1):+.3f}% | {100 * (k[1, 1] / tk[1, 1] - 1):+.3f}% "
              f"| {k[0, 2] - tk[0, 2]:+.2f} px | {k[1, 2] - tk[1, 2]:+.2f} px | {ocov:.3f} / {ofull:.3f} px | {dcov:.3f} / {dfull:.3f} / {dmean:.3f} px | {mcov:.3f} / {mfull:.3f} px "
              f"| {r['rms']:.4f} px | {r['used']}/{count} | {r['time']:.2f} / {r['cpu']:.2f} s |")


def real(exe, folder):
    found = False
    for camera in ("left", "right"):
        images = sorted(glob.glob(os.path.join(folder, f"{camera}[0-9][0-9].jpg")))
        if not images:
            continue
        found = True
        results = {"stipple": stipple_calibrate(exe, images), "OpenCV": opencv_calibrate(images)}
        print(f"\n### Real photos: {len(images)} images {camera}NN.jpg from {folder} (no ground truth)\n")
        print("| tool | fx | fy | cx | cy | k1 | k2 | p1 | p2 | k3 | RMS | views | wall / CPU time |")
        print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        for name, r in results.items():
            k, d = r["K"], r["dist"]
            print(f"| {name} | {k[0, 0]:.2f} | {k[1, 1]:.2f} | {k[0, 2]:.2f} | {k[1, 2]:.2f} | "
                  + " | ".join(f"{x:+.4f}" for x in d)
                  + f" | {r['rms']:.4f} px | {r['used']}/{len(images)} | {r['time']:.2f} / {r['cpu']:.2f} s |")
    if not found:
        print(f"no left??.jpg or right??.jpg in {folder}", file=sys.stderr)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--stipple", required=True, help="path to the built stipple binary")
    ap.add_argument("--seeds", type=int, nargs="*", default=[2024])
    ap.add_argument("--count", type=int, default=14)
    ap.add_argument("--real", help="folder with OpenCV's left01..left14.jpg and right01..right14.jpg")
    args = ap.parse_args()
    print(f"OpenCV {cv2.__version__}")
    for seed in args.seeds:
        synthetic(args.stipple, seed, args.count)
    if args.real:
        real(args.stipple, args.real)


if __name__ == "__main__":
    main()
