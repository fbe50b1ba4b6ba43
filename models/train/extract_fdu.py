#!/usr/bin/env python3
"""Extracts the FDU/BSRL trichoscopy set's training and validation splits from a clone of
github.com/roshan-k-patel/hair-follicle-density-estimation-209b (a bare git directory is enough)
into a git-ignored folder:

    python models/train/extract_fdu.py /path/to/repo.git --out data/fdu

writes `OUT/images/NAME.jpg`, `OUT/annotations/NAME.xml` (as in the repository) and
`OUT/train.txt`, `OUT/val.txt` (the repository's split lists). Only the names in the `train` and
`val` split lists are read: the third split is an evaluation the project does not see, and its
images and annotations are never opened, listed or copied (see the data card in
models/README.md). Nothing here is ever committed: `data/` is git-ignored.
"""
import argparse
import os
import subprocess
import sys

SPLITS = ("train", "val")


def git(gitdir, *args, stdin=None):
    """Runs git on `gitdir` (bare or not) and returns stdout as bytes."""
    cmd = ["git", "--git-dir", gitdir] if not os.path.isdir(os.path.join(gitdir, ".git")) \
        else ["git", "-C", gitdir]
    return subprocess.run(cmd + list(args), input=stdin, check=True, capture_output=True).stdout


def read_blobs(gitdir, paths):
    """The contents of `paths` at HEAD, through one `git cat-file --batch`."""
    req = "".join(f"HEAD:{p}\n" for p in paths).encode()
    out = git(gitdir, "cat-file", "--batch", stdin=req)
    blobs, pos = [], 0
    for p in paths:
        nl = out.index(b"\n", pos)
        header = out[pos:nl].decode().split()
        if len(header) < 3 or header[1] == "missing":
            sys.exit(f"extract_fdu: {p} is missing from {gitdir}")
        size = int(header[2])
        blobs.append(out[nl + 1:nl + 1 + size])
        pos = nl + 1 + size + 1
    return blobs


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("repo", help="clone (or bare git directory) of hair-follicle-density-estimation-209b")
    ap.add_argument("--out", default="data/fdu")
    args = ap.parse_args()
    if not os.path.exists(args.repo):
        sys.exit(f"extract_fdu: no repository at {args.repo}")
    os.makedirs(os.path.join(args.out, "images"), exist_ok=True)
    os.makedirs(os.path.join(args.out, "annotations"), exist_ok=True)
    for split in SPLITS:
        listing = read_blobs(args.repo, [f"data/ImageSets/Main/{split}.txt"])[0].decode()
        names = [n.strip() for n in listing.splitlines() if n.strip()]
        with open(os.path.join(args.out, f"{split}.txt"), "w") as f:
            f.write("\n".join(names) + "\n")
        for start in range(0, len(names), 100):
            chunk = names[start:start + 100]
            paths = [f"data/Images/{n}.jpg" for n in chunk] + [f"data/Annotations/{n}.xml" for n in chunk]
            blobs = read_blobs(args.repo, paths)
            for n, img, xml in zip(chunk, blobs[:len(chunk)], blobs[len(chunk):]):
                with open(os.path.join(args.out, "images", n + ".jpg"), "wb") as f:
                    f.write(img)
                with open(os.path.join(args.out, "annotations", n + ".xml"), "wb") as f:
                    f.write(xml)
        print(f"{split}: {len(names)} images and annotations in {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
