#!/usr/bin/env python3
"""Scores dermoscope follicle detections against the FDU/BSRL trichoscopy annotations.

    .venv/bin/python scripts/score_fdu.py --data data/fdu --split val RESULTS.jsonl...
    .venv/bin/python scripts/score_fdu.py --data data/fdu --split val --compare --stipple target/release/stipple
    python3 scripts/score_fdu.py --self-test

The annotations (Pascal VOC files in form) draw each hair as a vector: `(xmin, ymin)` is where
the hair leaves the skin (its exit point), `(xmax, ymax)` its tip, so the corners are not
ordered. The rules (issue 17):

- exit points within 0.12 mm of each other are linked, and each connected group is one
  follicular unit;
- a `follicle` detection matches a unit when it lies within 0.15 mm of one of the unit's exit
  points, one to one, closest pairs first; every other follicle detection is a false positive,
  every unit left is a miss; detections of other kinds are ignored;
- where a frame has a burned-in text bar at the top, truth and detections inside it are dropped
  (the exit points are dropped before linking);
- precision, recall and F1 are pooled over all images; the count error is the mean over images
  of |follicle detections - units|; at the set's scale, 300 px/mm.

Results are `stipple detect --format jsonl` lines (`image`, `detections` with `x`, `y`, `kind`),
matched to annotations by file stem. `--compare` runs `stipple detect` (default and
`--no-model`) and OpenCV's SimpleBlobDetector on the split's images in the same run and prints one
table. Only the split lists named with `--split` are read (`extract_fdu.py` copies only the
training and validation splits).
"""
import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET

import numpy as np

PX_PER_MM = 300.0
LINK_MM = 0.12
MATCH_MM = 0.15
#: The text bar: boxes of flat grey (about 80 of 255) behind the text, rows 6-43 of a
#: 1280x1024 frame. A frame has one when at least BAR_FRACTION of the pixels of rows
#: BAR_PROBE are that grey (0.40-0.55 with a bar, under 0.15 without, on all 1322 frames of
#: the training and validation splits); everything above its last such row plus BAR_MARGIN
#: rows is dropped.
BAR_PROBE = (10, 40)
BAR_FRACTION = 0.3
BAR_SEARCH_ROWS = 80
BAR_MARGIN = 3


def read_annotation(path):
    """Exit points [(x, y)] and their classes from one VOC file, as written."""
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError) as e:
        raise SystemExit(f"score_fdu: cannot read annotation {path}: {e}")
    points, classes = [], []
    for obj in root.findall("object"):
        box = obj.find("bndbox")
        try:
            points.append((float(box.find("xmin").text), float(box.find("ymin").text)))
        except (AttributeError, TypeError, ValueError):
            raise SystemExit(f"score_fdu: {path}: an <object> without a numeric bndbox/xmin, ymin")
        cls = obj.find("class")
        classes.append(cls.text if cls is not None else "")
    return points, classes


def grey_box_mask(rgb):
    """Pixels of the text bar's flat grey boxes (uint8 HxWx3, any channel order)."""
    a = rgb.astype(np.int16)
    m = a.mean(-1)
    return (np.abs(a[..., 0] - a[..., 1]) < 12) & (np.abs(a[..., 1] - a[..., 2]) < 12) & (m > 60) & (m < 100)


def text_bar_bottom(rgb):
    """First row below the burned-in text bar, or 0 when the frame has none."""
    top = grey_box_mask(rgb[:BAR_SEARCH_ROWS])
    rows = top.mean(1)
    if rows[BAR_PROBE[0]:BAR_PROBE[1]].mean() < BAR_FRACTION:
        return 0
    return int(np.nonzero(rows >= BAR_FRACTION)[0].max()) + 1 + BAR_MARGIN


def read_image(path):
    try:
        from PIL import Image
        return np.asarray(Image.open(path).convert("RGB"))
    except ImportError:
        import cv2
        im = cv2.imread(path)
        if im is None:
            raise SystemExit(f"score_fdu: cannot read image {path}")
        return im[..., ::-1]


def link_units(points, link_px):
    """Connected groups of points within `link_px` of each other (lists of indices)."""
    parent = list(range(len(points)))

    def find(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i in range(len(points)):
        for j in range(i + 1, len(points)):
            if math.dist(points[i], points[j]) <= link_px:
                parent[find(i)] = find(j)
    groups = {}
    for i in range(len(points)):
        groups.setdefault(find(i), []).append(i)
    return sorted(groups.values())


def match(dets, units, points, radius_px):
    """Matched (detection, unit) pairs, one to one, closest first."""
    pairs = []
    for di, (dx, dy) in enumerate(dets):
        for ui, unit in enumerate(units):
            d = min(math.dist((dx, dy), points[k]) for k in unit)
            if d <= radius_px:
                pairs.append((d, di, ui))
    pairs.sort()
    used_d, used_u, out = set(), set(), []
    for _, di, ui in pairs:
        if di not in used_d and ui not in used_u:
            used_d.add(di)
            used_u.add(ui)
            out.append((di, ui))
    return out


class Truth:
    """One frame's units after the text bar is dropped."""

    def __init__(self, xml_path, image_path, px_per_mm=PX_PER_MM):
        points, _ = read_annotation(xml_path)
        self.bar = text_bar_bottom(read_image(image_path)) if image_path else 0
        self.points = [p for p in points if p[1] >= self.bar]
        self.units = link_units(self.points, LINK_MM * px_per_mm)


def score_frames(frames, px_per_mm=PX_PER_MM):
    """frames: [(Truth, [(x, y, hairs or None)])] -> dict of pooled figures."""
    tp = n_det = n_units = 0
    count_err = []
    hairs_err = []
    for truth, dets in frames:
        dets = [d for d in dets if d[1] >= truth.bar]
        pairs = match([(d[0], d[1]) for d in dets], truth.units, truth.points, MATCH_MM * px_per_mm)
        tp += len(pairs)
        n_det += len(dets)
        n_units += len(truth.units)
        count_err.append(abs(len(dets) - len(truth.units)))
        for di, ui in pairs:
            if dets[di][2] is not None:
                hairs_err.append(abs(dets[di][2] - len(truth.units[ui])))
    p = tp / n_det if n_det else 0.0
    r = tp / n_units if n_units else 0.0
    f1 = 2 * p * r / (p + r) if p + r > 0 else 0.0
    out = {"images": len(frames), "units": n_units, "detections": n_det, "matched": tp,
           "precision": p, "recall": r, "f1": f1,
           "count_error": float(np.mean(count_err)) if count_err else 0.0}
    if hairs_err:
        out["hairs_exact"] = float(np.mean([e == 0 for e in hairs_err]))
        out["hairs_mae"] = float(np.mean(hairs_err))
    return out


def read_jsonl(path):
    """{stem: [(x, y, hairs)]} of follicle detections."""
    out = {}
    with open(path) as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
                stem = os.path.splitext(os.path.basename(rec["image"]))[0]
                out[stem] = [(float(d["x"]), float(d["y"]), d.get("hairs"))
                             for d in rec["detections"] if d.get("kind") == "follicle"]
            except (ValueError, KeyError, TypeError) as e:
                raise SystemExit(f"score_fdu: {path} line {n}: not a `stipple detect --format jsonl` line ({e})")
    return out


def split_names(data, split):
    path = os.path.join(data, f"{split}.txt")
    try:
        with open(path) as fh:
            return [n.strip() for n in fh if n.strip()]
    except OSError as e:
        raise SystemExit(f"score_fdu: no split list {path} (run models/train/extract_fdu.py): {e}")


def load_truths(data, names):
    return {n: Truth(os.path.join(data, "annotations", n + ".xml"), os.path.join(data, "images", n + ".jpg"))
            for n in names}


def score_results(truths, results, name):
    missing = [n for n in truths if n not in results]
    if missing:
        raise SystemExit(f"score_fdu: {name} has no line for {len(missing)} images, e.g. {missing[0]}")
    return score_frames([(truths[n], results[n]) for n in truths])


def fmt(name, s):
    line = (f"| {name} | {s['precision']:.3f} | {s['recall']:.3f} | {s['f1']:.3f} | {s['count_error']:.2f} "
            f"| {s['units']} | {s['detections']} |")
    if "hairs_exact" in s:
        line += f" {s['hairs_exact']:.2f} / {s['hairs_mae']:.2f} |"
    return line


HEADER = ("| detector | precision | recall | F1 | count error / image | units | detections | hairs exact / MAE |\n"
          "| --- | --- | --- | --- | --- | --- | --- | --- |")


# --- OpenCV's SimpleBlobDetector, set for follicle openings at the set's scale --------------------

def opencv_results(paths, px_per_mm):
    """SimpleBlobDetector with the scale-aware settings of scripts/detect_vs_opencv.py (dark blobs
    of radius 0.05-0.35 mm); every blob counts as an opening, since this set has no pigment dots."""
    import cv2
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from detect_vs_opencv import opencv_detector
    det = opencv_detector(px_per_mm)
    out, elapsed = {}, 0.0
    for path in paths:
        gray = cv2.imread(path, cv2.IMREAD_GRAYSCALE)
        t0 = time.perf_counter()
        kps = det.detect(gray)
        elapsed += time.perf_counter() - t0
        stem = os.path.splitext(os.path.basename(path))[0]
        out[stem] = [(k.pt[0] + 0.5, k.pt[1] + 0.5, None) for k in kps]
    return out, elapsed


def stipple_results(stipple, paths, extra, work, tag):
    out_path = os.path.join(work, f"{tag}.jsonl")
    t0 = time.perf_counter()
    with open(out_path, "w") as fh:
        for start in range(0, len(paths), 50):
            res = subprocess.run([stipple, "detect", "--px-per-mm", str(PX_PER_MM), "--format", "jsonl", *extra,
                                  *paths[start:start + 50]], capture_output=True, text=True)
            if res.returncode != 0:
                raise SystemExit(f"score_fdu: {stipple} detect {' '.join(extra)} failed: {res.stderr.strip()}")
            fh.write(res.stdout)
    return read_jsonl(out_path), time.perf_counter() - t0, out_path


# --- self-test on hand-made annotations -----------------------------------------------------------

def _voc(objects):
    body = "".join(f"<object><class>{c}</class><bndbox><xmin>{x0}</xmin><ymin>{y0}</ymin>"
                   f"<xmax>{x1}</xmax><ymax>{y1}</ymax></bndbox></object>" for c, x0, y0, x1, y1 in objects)
    return f"<annotation><size><width>400</width><height>300</height></size>{body}</annotation>"


def self_test():
    """Hand-made frames with known answers; exits non-zero on the first wrong figure."""
    from PIL import Image
    work = tempfile.mkdtemp(prefix="score-fdu-selftest-")
    os.makedirs(os.path.join(work, "annotations"))
    os.makedirs(os.path.join(work, "images"))
    # Frame a: exit points (100, 100) and (130, 100) are 30 px apart (0.1 mm: one unit, corners
    # written tip first for the second hair, so xmax < xmin), (200, 100) is 70 px away (its own
    # unit), (300, 200) a third unit. Frame b has a text bar (rows 0-43 grey) with one exit
    # point under it, and one unit below.
    a = [("premium", 100, 100, 40, 20), ("premium", 130, 100, 250, 150), ("single", 200, 100, 210, 20),
         ("single", 300, 200, 380, 290)]
    b = [("single", 50, 20, 90, 30), ("single", 150, 150, 190, 190)]
    for name, objs, bar in (("a", a, False), ("b", b, True)):
        with open(os.path.join(work, "annotations", name + ".xml"), "w") as fh:
            fh.write(_voc(objs))
        img = np.full((300, 400, 3), 200, np.uint8)
        if bar:
            img[6:44, :300] = 80
        Image.fromarray(img).save(os.path.join(work, "images", name + ".jpg"), quality=95)
    with open(os.path.join(work, "val.txt"), "w") as fh:
        fh.write("a\nb\n")
    truths = load_truths(work, split_names(work, "val"))
    checks = []
    checks.append(("units in a", [len(u) for u in truths["a"].units], [2, 1, 1]))
    checks.append(("bar in a", truths["a"].bar, 0))
    checks.append(("bar in b", truths["b"].bar, 44 + BAR_MARGIN))
    checks.append(("units in b", len(truths["b"].units), 1))
    # Detections: in a, one 36 px from (130, 100) (within 45 px of the pair unit, 58 px from
    # (200, 100)), a second one 10 px from (100, 100) (closer: it takes the pair unit, and the
    # first is left a false positive), one 50 px from (300, 200) (too far: false positive), a
    # pigment dot (ignored). In b, one in the bar (dropped) and one on the unit.
    jsonl = os.path.join(work, "dets.jsonl")
    with open(jsonl, "w") as fh:
        fh.write(json.dumps({"image": "x/a.jpg", "detections": [
            {"x": 150.0, "y": 130.0, "kind": "follicle", "hairs": 1},
            {"x": 100.0, "y": 110.0, "kind": "follicle", "hairs": 2},
            {"x": 300.0, "y": 250.0, "kind": "follicle"},
            {"x": 300.0, "y": 200.0, "kind": "pigment"}]}) + "\n")
        fh.write(json.dumps({"image": "b.jpg", "detections": [
            {"x": 50.0, "y": 20.0, "kind": "follicle"},
            {"x": 160.0, "y": 150.0, "kind": "follicle", "hairs": 2}]}) + "\n")
    s = score_results(truths, read_jsonl(jsonl), "self-test")
    # a: 3 detections, 3 units, 1 match (the second detection to the pair). b: 1 detection, 1
    # unit, 1 match. Pooled: P 2/4, R 2/4. Count errors |3-3| and |1-1|. Hairs: 2 vs 2 exact, 2 vs 1.
    checks += [("matched", s["matched"], 2), ("detections", s["detections"], 4), ("units", s["units"], 4),
               ("precision", round(s["precision"], 6), 0.5), ("recall", round(s["recall"], 6), 0.5),
               ("f1", round(s["f1"], 6), 0.5), ("count error", s["count_error"], 0.0),
               ("hairs exact", s["hairs_exact"], 0.5), ("hairs mae", s["hairs_mae"], 0.5)]
    # A second set: no detections at all in a -> count error (3 + 0) / 2, recall 1/4, precision 1.
    with open(jsonl, "w") as fh:
        fh.write(json.dumps({"image": "a.jpg", "detections": []}) + "\n")
        fh.write(json.dumps({"image": "b.jpg", "detections": [{"x": 150, "y": 190, "kind": "follicle"}]}) + "\n")
    s = score_results(truths, read_jsonl(jsonl), "self-test")
    checks += [("count error 2", s["count_error"], 1.5), ("recall 2", s["recall"], 0.25),
               ("precision 2", s["precision"], 1.0)]
    bad = [(what, got, want) for what, got, want in checks if got != want]
    for what, got, want in bad:
        print(f"score_fdu self-test: {what}: got {got}, want {want}", file=sys.stderr)
    if bad:
        sys.exit(1)
    print(f"score_fdu self-test: {len(checks)} checks passed")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("results", nargs="*", help="`stipple detect --format jsonl` output files")
    ap.add_argument("--data", default="data/fdu", help="folder written by models/train/extract_fdu.py")
    ap.add_argument("--split", default="val", choices=("train", "val"))
    ap.add_argument("--limit", type=int, default=0, help="score the first N images of the split only")
    ap.add_argument("--compare", action="store_true", help="run stipple (default, --no-model) and OpenCV")
    ap.add_argument("--stipple", default="target/release/stipple")
    ap.add_argument("--variant", action="append", default=[],
                    help="NAME=ARGS: another stipple detect run, e.g. 'old model=--model old.onnx'")
    ap.add_argument("--keep", help="folder to keep the JSONL outputs of --compare in")
    ap.add_argument("--self-test", action="store_true")
    args = ap.parse_args()
    if args.self_test:
        self_test()
        return
    names = split_names(args.data, args.split)
    if args.limit:
        names = names[:args.limit]
    truths = load_truths(args.data, names)
    rows = []
    for path in args.results:
        rows.append((os.path.basename(path), score_results(truths, read_jsonl(path), path)))
    if args.compare:
        paths = [os.path.join(args.data, "images", n + ".jpg") for n in names]
        work = args.keep or tempfile.mkdtemp(prefix="score-fdu-")
        os.makedirs(work, exist_ok=True)
        runs = [("stipple", []), ("stipple --no-model", ["--no-model"])]
        for v in args.variant:
            name, _, extra = v.partition("=")
            runs.append((name, extra.split()))
        for i, (name, extra) in enumerate(runs):
            res, secs, _ = stipple_results(args.stipple, paths, extra, work, f"run{i}")
            rows.append((name, score_results(truths, res, name)))
            print(f"{name}: {1000 * secs / len(paths):.0f} ms per image (whole process)", file=sys.stderr)
        res, secs = opencv_results(paths, PX_PER_MM)
        rows.append(("OpenCV SimpleBlobDetector", score_results(truths, res, "opencv")))
        print(f"opencv: {1000 * secs / len(paths):.0f} ms per image (detect only)", file=sys.stderr)
    if not rows:
        ap.error("give JSONL files, --compare or --self-test")
    print(f"{args.split}: {len(names)} images at {PX_PER_MM:g} px/mm")
    print(HEADER)
    for name, s in rows:
        print(fmt(name, s))


if __name__ == "__main__":
    main()
