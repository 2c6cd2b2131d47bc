"""How the whole pipeline holds up on worse images: the 770 test images, each degraded
(degrade.py) before the Haar detector sees it, scored for one or more checkpoints.

Every checkpoint meets the same detections (each image is read, degraded and searched
once per condition), so differences between columns are the landmark nets' alone. A face the
detector misses enters the mean at 0.10, as in evaluate.py.

    python benchmarks/robustness.py [--checkpoint A.pt --checkpoint B.pt] [--json out.json]
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import data_files
import degrade  # noqa: E402
from atomic import write_json  # noqa: E402
from checkpoint import CheckpointError  # noqa: E402
from face_detector import FaceDetector, to_gray  # noqa: E402
from evaluate import cnn_pipeline, load_test_split, run_on_face, score  # noqa: E402
from keypointer import UDACITY_CHECKPOINT, Keypointer  # noqa: E402

# Levels in the raw image's pixels and gray levels (test faces: outer eyes 15-121 px
# apart, median 43); lighting in stops. gamma and the lighting families are never trained on.
CONDITIONS = ["blur=2", "noise=15", "jpeg=15", "lowres=0.5", "gamma=2.5", "backlight=3", "uneven=3", "cast=0.5"]


def robustness(data_dir, checkpoints, conditions, subset=0):
    """{condition: {checkpoint: score summary}}, 'clean' first. Each image is read,
    degraded and searched for faces once; every checkpoint then marks the same boxes."""
    detector = FaceDetector()
    landmarks = {c: cnn_pipeline(Keypointer(c), "haar", detector)[1] for c in checkpoints}
    table = {}
    for condition in ["clean"] + list(conditions):
        dataset = load_test_split(data_dir, None if condition == "clean" else degrade.parse(condition))
        results = {c: [] for c in checkpoints}
        for i in range(subset or len(dataset)):
            item = dataset[i]
            boxes = detector(to_gray(item["image"]))
            for c in checkpoints:
                results[c].append(run_on_face(item, lambda image, target, found=boxes: found, landmarks[c]))
        table[condition] = {c: score(r) for c, r in results.items()}
        print(format_row(condition, table[condition]), flush=True)
    return table


def format_row(condition, scores):
    first = next(iter(scores.values()))
    cells = "  ".join(f"{s['nme']:.4f} {100 * s['failure_rate']:5.2f}%" for s in scores.values())
    return f"{condition:<12} {100 * first['detection_rate']:6.2f}%  {cells}"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", action="append", help=f"repeatable (default: {UDACITY_CHECKPOINT})")
    p.add_argument("--data-dir", help=f"dataset root (default: ${data_files.DATA_DIR_ENV} or ./data)")
    p.add_argument("--conditions", nargs="+", default=CONDITIONS, metavar="NAME=LEVEL",
                   help="degradations to test (default: %(default)s)")
    p.add_argument("--subset", type=int, default=0, help="only the first N test images")
    p.add_argument("--json", help="write {condition: {checkpoint: summary}} here")
    args = p.parse_args(argv)
    checkpoints = list(dict.fromkeys(args.checkpoint or [UDACITY_CHECKPOINT]))
    try:
        for condition in args.conditions:
            degrade.parse(condition)
    except ValueError as e:
        sys.exit(f"error: {e}")
    print(f"{'condition':<12} {'found':>7}  " + "  ".join(f"{os.path.basename(c):>14}" for c in checkpoints))
    print(f"{'':<12} {'':>7}  " + "  ".join(f"{'NME   failures':>14}" for _ in checkpoints))
    try:
        table = robustness(data_files.resolve_data_dir(args.data_dir), checkpoints, args.conditions, args.subset)
    except (data_files.DataError, CheckpointError) as e:
        sys.exit(f"error: {e}")
    if args.json:
        write_json(args.json, table)


if __name__ == "__main__":
    main()
