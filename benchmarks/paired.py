"""Is one checkpoint better than another, beyond what the choice of test faces explains?

    python benchmarks/paired.py A.pt B.pt [--faces FOLDERS] [--framing gt|haar] [--json out.json]

Without --faces: the three sets of benchmarks/dlib_sets.py (the validation faces train.py holds out,
LFPW's training photographs, LFPW test), from $FKP_300W_DIR or ../shared/data/300w.

Both checkpoints place the points of the same faces (evaluate.py's pipelines, each with its second
stage where it has one; a face the detector misses enters at 0.10); the difference of their per-face NME (B - A, negative: B is better) is
averaged and resampled by face (a paired bootstrap): the interval says how much of it another
draw of faces of this kind could undo. Accuracy only.
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from checkpoint import CheckpointError  # noqa: E402
from data_300w import WILD_DIR_ENV, find_300w_dir  # noqa: E402
from data_files import DataError  # noqa: E402
from evaluate import cnn_pipeline, load_faces, run_on_dataset  # noqa: E402
from face_detector import FaceDetector  # noqa: E402
from keypointer import Keypointer  # noqa: E402
from metrics import FAILURE_THRESHOLD  # noqa: E402

RESAMPLES = 10000
LEVEL = 0.95
LARGEST = 3          # the faces listed where B did worst


def paired_interval(a, b, resamples=RESAMPLES, level=LEVEL, seed=0):
    """(mean of b - a, low, high): a percentile interval of that mean over faces drawn again."""
    diff = np.asarray(b, np.float64) - np.asarray(a, np.float64)
    draws = np.random.default_rng(seed).integers(0, len(diff), (resamples, len(diff)))
    means = diff[draws].mean(1)
    tail = 100 * (1 - level) / 2
    return float(diff.mean()), float(np.percentile(means, tail)), float(np.percentile(means, 100 - tail))


def pipeline(checkpoint, framing):
    """evaluate.py's (find_boxes, landmarks) for ``checkpoint``, with its second stage if it has one."""
    return cnn_pipeline(Keypointer(checkpoint, second_stage="auto"), framing, FaceDetector() if framing == "haar" else None)


def per_face_nme(pipe, faces):
    """(per-face NME, missed): each face through ``pipe``, a missed face at 0.10."""
    results = run_on_dataset(faces, *pipe)
    missed = np.array([r["nme"] is None for r in results])
    return np.array([FAILURE_THRESHOLD if m else r["nme"] for r, m in zip(results, missed)]), missed   # missed: 0.10


def compare(pipe_a, pipe_b, faces):
    (a, missed_a), (b, missed_b) = per_face_nme(pipe_a, faces), per_face_nme(pipe_b, faces)
    mean, low, high = paired_interval(a, b)
    worse = np.argsort(a - b)[:LARGEST]                 # the faces B made worst, most first
    return {"n": len(a), "nme_a": float(a.mean()), "nme_b": float(b.mean()), "b_minus_a": mean,
            "interval": [low, high], "level": LEVEL, "b_better_on": int((b < a).sum()),
            "failures_a": int(((a > FAILURE_THRESHOLD) | missed_a).sum()),
            "failures_b": int(((b > FAILURE_THRESHOLD) | missed_b).sum()),
            "most_worsened": [{"name": faces.names[i], "a": float(a[i]), "b": float(b[i])} for i in worse]}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("a", help="the reference checkpoint")
    p.add_argument("b", help="the checkpoint compared with it")
    p.add_argument("--faces", help="300-W-layout folders or dlib .xml files, comma-separated (default: the three sets)")
    p.add_argument("--framing", choices=("gt", "haar"), default="gt", help="as evaluate.py's (default: %(default)s)")
    p.add_argument("--json", help="write the figures here")
    args = p.parse_args(argv)
    if not args.faces and find_300w_dir() is None:
        p.error(f"no 300-W copy: set {WILD_DIR_ENV} or pass --faces")
    from benchmarks.dlib_sets import photograph_sets
    result = {"a": args.a, "b": args.b, "framing": args.framing, "sets": {}}
    try:
        sets = {args.faces: load_faces(args.faces)} if args.faces else photograph_sets(find_300w_dir())
        pipe_a, pipe_b = pipeline(args.a, args.framing), pipeline(args.b, args.framing)
        for name, faces in sets.items():
            r = result["sets"][name] = compare(pipe_a, pipe_b, faces)
            low, high = r["interval"]
            print(f"{name}: {r['n']} faces, A {r['nme_a']:.4f}  B {r['nme_b']:.4f}  B - A {r['b_minus_a']:+.4f} "
                  f"({LEVEL:.0%} interval {low:+.4f} to {high:+.4f}); B better on {r['b_better_on']}; "
                  f"failures {r['failures_a']} -> {r['failures_b']}", flush=True)
    except (CheckpointError, DataError) as e:
        sys.exit(f"error: {e}")
    if args.json:
        from atomic import write_json
        write_json(args.json, result)


if __name__ == "__main__":
    main()
