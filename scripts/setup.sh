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

# Python peers (OpenCV, scikit-image) for the side-by-side scripts, in a git-ignored venv.
if [ "$want_peers" = 1 ]; then
  if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
  fi
  if ! .venv/bin/python -c "import cv2, numpy, skimage" 2>/dev/null; then
    echo "setup: installing the Python peers into .venv" >&2
    .venv/bin/pip install -q --disable-pip-version-check opencv-python-headless numpy scikit-image
  fi
fi
