#!/usr/bin/env bash
# Idempotent set-up of everything Stipple needs on a fresh Debian machine, beyond the Rust
# toolchain: system libraries, and (with --peers) the Python peers used by the comparison
# scripts. Safe to run again: it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

want_peers=0
for arg in "$@"; do
  case "$arg" in
    --peers) want_peers=1 ;;
    *) echo "setup.sh: unknown option $arg" >&2; exit 2 ;;
  esac
done

# System packages: libclang-dev for bindgen (camera support), chromium for the browser test.
apt_pkgs=(libclang-dev chromium)
missing=()
for p in "${apt_pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  echo "setup: installing ${missing[*]}" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# ONNX Runtime for the segmentation model (loaded at run time by `ort`, feature load-dynamic).
# crates.io does not ship it; the PyPI wheel does, as one standalone shared library, which goes
# into the git-ignored .ort/ where the binary looks for it (see src/perception/segment.rs).
ort_version=1.31.1
ort_lib=".ort/libonnxruntime.so.$ort_version"
if [ ! -f "$ort_lib" ]; then
  echo "setup: fetching ONNX Runtime $ort_version from PyPI into .ort/" >&2
  ort_tmp="$(mktemp -d)"
  trap 'rm -rf "$ort_tmp"' EXIT
  python3 -m pip download -q --disable-pip-version-check --no-deps --only-binary=:all: \
    --platform manylinux_2_28_x86_64 --python-version 3.11 "onnxruntime==$ort_version" -d "$ort_tmp"
  mkdir -p .ort
  python3 - "$ort_tmp" "$ort_lib" "$ort_version" <<'PY'
import glob, shutil, sys, zipfile
tmp, dst, ver = sys.argv[1:4]
wheel = glob.glob(f"{tmp}/onnxruntime-{ver}-*.whl")[0]
with zipfile.ZipFile(wheel) as z, z.open(f"onnxruntime/capi/libonnxruntime.so.{ver}") as src, \
        open(dst + ".part", "wb") as out:
    shutil.copyfileobj(src, out)
shutil.move(dst + ".part", dst)
PY
fi

# Python peers (OpenCV, scikit-image) for the side-by-side scripts, and scikit-learn with pandas
# for the dermoscope classifiers' fitting scripts (models/train/fit_*.py), in a git-ignored venv.
if [ "$want_peers" = 1 ]; then
  if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
  fi
  if ! .venv/bin/python -c "import cv2, numpy, skimage, sklearn, pandas" 2>/dev/null; then
    echo "setup: installing the Python peers into .venv" >&2
    .venv/bin/pip install -q --disable-pip-version-check opencv-python-headless numpy scikit-image \
      scikit-learn pandas
  fi
fi
