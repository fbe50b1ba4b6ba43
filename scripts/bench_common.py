"""What the side-by-side speed scripts share: run one criterion bench, build the release
binary, and read a criterion median."""
import json
import os
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def target_dir():
    return os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))


def run_bench_and_build(bench, measurement_s):
    """Runs `cargo bench --bench BENCH` and builds the release binary; returns its path."""
    subprocess.run(["cargo", "bench", "--bench", bench, "--", "--warm-up-time", "1",
                    "--measurement-time", str(measurement_s)], cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL)
    subprocess.run(["cargo", "build", "--release"], cwd=ROOT, check=True, stderr=subprocess.DEVNULL)
    return os.path.join(target_dir(), "release", "stipple")


def criterion_median_ms(*bench_id):
    """The median of the last run of a criterion benchmark, e.g. ("calib", "detect_board")."""
    path = os.path.join(target_dir(), "criterion", *bench_id, "new", "estimates.json")
    with open(path) as fh:
        return json.load(fh)["median"]["point_estimate"] / 1e6
