"""Score a checkpoint: NME, failure rate, AUC, CED plot, timing — on Udacity's 770 test faces,
on any 300-W-layout folder (or dlib XML), or on the full 300-W's standard subsets.

    python evaluate.py                                  # Udacity model, Udacity test split, ground-truth framing
    python evaluate.py --framing haar --json out.json   # the whole pipeline on raw images
    python evaluate.py --faces ../shared/data/300w/lfpw/testset --framing haar   # in-the-wild model
    python evaluate.py --300w-root PATH/300W --framing haar   # common / challenging / full subsets

NME = mean point-to-point error / ground-truth outer-eye-corner distance (points 36, 45),
in original-image pixels. With --framing haar a face the detector misses counts as a
failure and enters the mean NME at the failure threshold (0.10); so does a detection the model
scores as no face, looked at once more and dropped, as detect.py drops it (--min-score).
"""
import argparse
import json
import os
import sys
import time

import numpy as np

import cli

import data_files
import data_load
import geometry
import degrade
from atomic import write_json
from checkpoint import CheckpointError
import data_300w
from pipeline import DEFAULT_REFINE, REFRAME_SCALE, ROLL_ALIGN_DEGREES, keypoints_for_squares, scored_faces
from face_detector import FaceDetector, to_gray
from framing import DEFAULT_MARGIN, match_box
from detect import add_second_stage_options
from keypointer import DEFAULT_CHECKPOINT, MIN_FACE_SCORE, UDACITY_CHECKPOINT, Keypointer
from metrics import FAILURE_THRESHOLD, ced_curve, nme_per_face, summarize

TIMING_RUNS = 200   # batch-of-one forward passes timed after warm-up
# 300-W's standard test subsets, as folders of the challenge's own layout
SUBSETS_300W = {"common": ("lfpw/testset", "helen/testset"), "challenging": ("ibug",),
                "full": ("lfpw/testset", "helen/testset", "ibug")}


def run_on_test_set(data_dir, find_boxes, landmarks, subset=0, degradation=None):
    """Per-face results on the test split for any detector + landmarker pair.

    ``find_boxes(image, target) -> (N, 4)`` boxes x, y, w, h (a real detector ignores
    ``target``); ``landmarks(image, box) -> (68, 2)`` in image pixels. Returns dicts with name, nme (None when the face is missed),
    keypoints and the seconds ``landmarks`` took. ``degradation``: (name, level) of
    degrade.py, applied to every raw image first.
    """
    return run_on_dataset(load_test_split(data_dir, degradation), find_boxes, landmarks, subset)


def _degrader(degradation):
    def degraded(image, keypoints):
        return degrade.apply(image, *degradation), keypoints
    return degraded if degradation else None


def load_test_split(data_dir, degradation=None):
    """The test split, each raw image degraded first when ``degradation`` = (name, level)."""
    return data_load.FacialKeypointsDataset(*data_files.split_paths(data_dir, "test"), _degrader(degradation))


def load_faces(sources, degradation=None):
    """The photographs of 300-W-layout folders or dlib XML files, as a test set."""
    return data_300w.PhotoFaces(data_300w.read_sources(sources), _degrader(degradation))


def run_on_dataset(dataset, find_boxes, landmarks, subset=0):
    """:func:`run_on_test_set` on any dataset of {'image', 'keypoints', 'name'} items."""
    return [run_on_face(dataset[i], find_boxes, landmarks) for i in range(subset or len(dataset))]


def run_on_face(item, find_boxes, landmarks):
    """One dataset item through a detector + landmarker pair (see :func:`run_on_test_set`);
    a landmarker returning None drops the face: it is missed, in the time it took."""
    image, target = item["image"], item["keypoints"]
    boxes = np.asarray(find_boxes(image, target), np.float64).reshape(-1, 4)
    j = match_box(boxes, target)
    if j is None:
        return {"name": item["name"], "nme": None, "keypoints": None}
    t0 = time.perf_counter()
    kp = landmarks(image, boxes[j])
    seconds = time.perf_counter() - t0
    return {"name": item["name"], "nme": None if kp is None else float(nme_per_face(kp, target)), "keypoints": kp,
            "seconds": seconds}


def cnn_pipeline(keypointer, framing="haar", detector=None, margin=DEFAULT_MARGIN, refine=DEFAULT_REFINE,
                 align=ROLL_ALIGN_DEGREES, reframe=REFRAME_SCALE, min_score=MIN_FACE_SCORE):
    """(find_boxes, landmarks) for our CNN. ``framing='haar'``: the Haar detector, the padded
    ROI and detect.py's face score (a detection under ``min_score`` is looked at once more,
    then dropped: landmarks returns None); ``'gt'``: an oracle box, the training framing of the
    annotated face, scored whatever the face score."""
    if framing == "gt":
        def find_boxes(image, target):
            x, y, side = geometry.face_square(target, keypointer.framing_scale)
            return [(x, y, side, side)]

        def landmarks(image, box):
            return keypoints_for_squares(to_gray(image), [tuple(box[:3])], keypointer, refine, align, reframe)[0]
    else:
        # As in pipeline.detect_keypoints, the gray image made for the detector is the one
        # the landmark stage crops from, so the per-face time does not convert it again.
        last = {"image": None, "gray": None}

        def find_boxes(image, target=None):
            last.update(image=image, gray=to_gray(image))
            return detector(last["gray"])

        def landmarks(image, box):
            gray = last["gray"] if image is last["image"] else to_gray(image)
            faces = scored_faces(gray, box[None], keypointer, margin, refine, min_score, align, reframe=reframe)
            return faces[0]["keypoints"] if faces else None
    return find_boxes, landmarks


def score(results):
    """Summary with missed faces as failures at the threshold (and +inf in the CED)."""
    found = np.array([r["nme"] for r in results if r["nme"] is not None])
    missed = sum(r["nme"] is None for r in results)
    all_nme = np.concatenate([found, np.full(missed, FAILURE_THRESHOLD)])
    with_inf = np.concatenate([found, np.full(missed, np.inf)])
    summary = summarize(with_inf)
    summary.update(nme=float(all_nme.mean()), nme_detected=float(found.mean()) if len(found) else None,
                   detection_rate=len(found) / len(results), missed=int(missed),
                   failure_rate=float((with_inf > FAILURE_THRESHOLD).mean()))
    return summary


def median_ms(call, runs=TIMING_RUNS, warmup=20):
    """Median milliseconds of ``call()``, called back to back after ``warmup`` calls."""
    for _ in range(warmup):
        call()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        call()
        times.append(time.perf_counter() - t0)
    return 1000 * float(np.median(times))


def _median_ms(seconds):
    return 1000 * float(np.median(seconds)) if seconds else None


def time_per_face(keypointer, runs=TIMING_RUNS):
    """Median milliseconds of one batch-of-one forward pass, after warm-up."""
    crop = np.random.default_rng(0).random((1, 1, keypointer.input_size, keypointer.input_size))
    return median_ms(lambda: keypointer(crop), runs)


def plot_ced(curves, path):
    """Cumulative error distribution curves {label: nmes} to ``path`` (PNG)."""
    from matplotlib.figure import Figure
    fig = Figure(figsize=(5, 4))
    ax = fig.subplots()
    for label, nmes in curves.items():
        xs, ys = ced_curve(nmes)
        ax.plot(xs, ys, label=label)
    ax.set(xlabel="NME (outer-eye-corner distance)", ylabel="fraction of faces",
           xlim=(0, FAILURE_THRESHOLD), ylim=(0, 1), title="Cumulative error distribution")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def test_sets(args, degradation):
    """{name: dataset} to score: Udacity's test split, --faces, or the --300w-root subsets."""
    if args.faces:
        return {"faces": load_faces(args.faces, degradation)}
    if args.root_300w:
        return {name: load_faces([os.path.join(args.root_300w, d) for d in dirs], degradation)
                for name, dirs in SUBSETS_300W.items()}
    return {"udacity_test": load_test_split(data_files.resolve_data_dir(args.data_dir), degradation)}


def reframe_ratio(text):
    """--reframe: 0 (never) or a ratio above 1."""
    value = cli.number(float, 0, 10)(text)
    if 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"{text}: give a ratio above 1, or 0 for never")
    return value


def degradation_option(text):
    try:
        degrade.parse(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return text


def make_parser():
    number, p = cli.number, cli.Parser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", type=cli.existing_file, help=f"(default: {os.path.relpath(UDACITY_CHECKPOINT)} on Udacity's test split, "
                                        f"{os.path.relpath(DEFAULT_CHECKPOINT)} on --faces / --300w-root)")
    p.add_argument("--data-dir", type=folder_option, help=f"Udacity dataset root (default: ${data_files.DATA_DIR_ENV} or ./data)")
    p.add_argument("--faces", metavar="SOURCES",
                   help="score these instead: comma-separated 300-W-layout folders or dlib .xml files")
    p.add_argument("--300w-root", dest="root_300w", metavar="ROOT", type=folder_option,
                   help="the full 300-W (lfpw/testset, helen/testset, ibug): its common, challenging and full subsets")
    p.add_argument("--framing", choices=("gt", "haar"), default="gt",
                   help="crop from ground-truth keypoints, or run the Haar pipeline (default: gt)")
    p.add_argument("--refine", type=number(int, 0, 10), default=DEFAULT_REFINE,
                   help="re-framing passes, 0 to 10 (default: %(default)s)")
    p.add_argument("--align", type=number(float, 0, 180), default=ROLL_ALIGN_DEGREES, metavar="DEG",
                   help="cut faces rolled past DEG degrees (0 to 180) again, upright; 0: never (default: %(default)s)")
    p.add_argument("--reframe", type=reframe_ratio, default=REFRAME_SCALE, metavar="RATIO",
                   help="also cut again faces framed RATIO (above 1) times too large or small; 0: never "
                        "(default: %(default)s)")
    p.add_argument("--min-score", type=cli.fraction, default=MIN_FACE_SCORE,
                   help="--framing haar: a detection the model scores under this is looked at once more, "
                        "then dropped as detect.py drops it (a missed face); 0: keep all (default: %(default)s)")
    p.add_argument("--margin", type=number(float, 0, 2), default=DEFAULT_MARGIN,
                   help="ROI padding per side, 0 to 2 (default: %(default)s)")
    p.add_argument("--backend", choices=("onnx", "torch"), default="onnx",
                   help="run the net with ONNX Runtime or PyTorch (default: %(default)s)")
    p.add_argument("--flip", action="store_true", help="average with the mirrored crop's prediction")
    add_second_stage_options(p)
    p.add_argument("--markup", choices=("300w", "udacity"),
                   help="the head of a two-markup checkpoint (default: its first)")
    p.add_argument("--subset", type=number(int, 0), default=0, help="only the first N test images; 0: all")
    p.add_argument("--degrade", metavar="NAME=LEVEL", type=degradation_option,
                   help=f"degrade every raw image first: one of {sorted(degrade.DEGRADATIONS)} (see degrade.py)")
    p.add_argument("--json", type=cli.output_file((".json",)), help="write the summary here (.json)")
    p.add_argument("--ced", type=cli.output_file((".png",)), help="write the CED plot here (.png)")
    return p


def parse_args(argv=None):
    p = make_parser()
    args = p.parse_args(argv)
    if args.faces and args.root_300w:
        p.error("give --faces or --300w-root, not both")
    return args


def folder_option(text):
    if not os.path.isdir(text):
        raise argparse.ArgumentTypeError(f"{text}: no such folder")
    return text


def main(argv=None):
    args = parse_args(argv)
    checkpoint = args.checkpoint or (DEFAULT_CHECKPOINT if args.faces or args.root_300w else UDACITY_CHECKPOINT)
    degradation = degrade.parse(args.degrade) if args.degrade else None
    try:
        sets = test_sets(args, degradation)
        keypointer = Keypointer(checkpoint, args.backend, flip=args.flip, markup=args.markup,
                                second_stage=args.second_stage)
        detector = FaceDetector() if args.framing == "haar" else None
        find_boxes, landmarks = cnn_pipeline(keypointer, args.framing, detector, args.margin, args.refine,
                                             args.align or None, args.reframe or None, args.min_score)
        t0 = time.perf_counter()
        results = {name: run_on_dataset(dataset, find_boxes, landmarks, args.subset) for name, dataset in sets.items()}
    except (data_files.DataError, CheckpointError) as e:
        sys.exit(f"error: {e}")
    seconds, forward_ms = time.perf_counter() - t0, time_per_face(keypointer)
    summaries = {}
    for name, rows in results.items():
        summary, per_face = score(rows), [r["seconds"] for r in rows if "seconds" in r]
        summary.update(set=name, checkpoint=checkpoint, markup=keypointer.markup, framing=args.framing,
                       refine=args.refine, align=args.align, reframe=args.reframe, min_score=args.min_score,
                       flip=args.flip, second_stage=keypointer.second_stage,
                       degrade=args.degrade, backend=args.backend, seconds=seconds, forward_ms=forward_ms,
                       keypoint_ms_per_face=_median_ms(per_face),
                       keypoint_ms_mean=1000 * float(np.mean(per_face)) if per_face else None)
        summaries[name] = summary
    out = next(iter(summaries.values())) if len(summaries) == 1 else summaries
    print(json.dumps(out, indent=2))
    if args.json:
        write_json(args.json, out)
    if args.ced:
        plot_ced({f"{name}, {args.framing} framing": [r["nme"] if r["nme"] is not None else np.inf for r in rows]
                  for name, rows in results.items()}, args.ced)


if __name__ == "__main__":
    main()
