"""How long the command line takes a user, end to end in wall time: --help, a mistake refused,
one photo with its JSON (the ONNX graph exported on the first run, read from its cache after).

    python benchmarks/startup.py [--runs 5] [--json outputs/startup.json]

Each figure is the median over --runs fresh processes (python started each time, as a user
starts it); 'first run' empties the ONNX cache before every run.
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import cv2

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from atomic import write_json  # noqa: E402
from detect import sample_image  # noqa: E402


def wall_seconds(args, cwd, env, runs, status, before=None):
    """Median wall time of ``runs`` fresh ``detect.py ARGS`` processes (``before()`` ahead of
    each), each checked to end with exit ``status``."""
    times = []
    for _ in range(runs):
        if before:
            before()
        start = time.perf_counter()
        run = subprocess.run([sys.executable, os.path.join(ROOT, "detect.py"), *args], cwd=cwd, env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        times.append(time.perf_counter() - start)
        if run.returncode != status:
            sys.exit(f"error: detect.py {' '.join(args)} exited {run.returncode}, not {status}: {run.stderr.strip()}")
    return statistics.median(times)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=5, help="processes per figure (default: %(default)s)")
    p.add_argument("--json", help="write the figures here")
    args = p.parse_args(argv)
    work = tempfile.mkdtemp(prefix="startup_")
    try:
        cache = os.path.join(work, "onnx")
        env = {**os.environ, "FKP_ONNX_CACHE": cache}
        cv2.imwrite(os.path.join(work, "photo.jpg"), cv2.cvtColor(sample_image(), cv2.COLOR_RGB2BGR))
        with open(os.path.join(work, "corrupt.jpg"), "wb") as f:
            f.write(b"\xff\xd8\xff\xe0" + bytes(100))
        photo = ["photo.jpg", "--json", "out.json"]
        figures = {
            "help_s": wall_seconds(["--help"], work, env, args.runs, 0),
            "bad_option_s": wall_seconds(["--margin", "-1"], work, env, args.runs, 2),
            "corrupt_photo_s": wall_seconds(["corrupt.jpg"], work, env, args.runs, 1),
            "photo_first_run_s": wall_seconds(photo, work, env, args.runs, 0,
                                              before=lambda: shutil.rmtree(cache, ignore_errors=True)),
            "photo_s": wall_seconds(photo, work, env, args.runs, 0),
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)
    figures["runs"] = args.runs
    for name, value in figures.items():
        print(f"{name:20s} {value:.3f}" if name.endswith("_s") else f"{name:20s} {value}")
    if args.json:
        write_json(args.json, figures)


if __name__ == "__main__":
    main()
