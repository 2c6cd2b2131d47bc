"""Hidden parts of the face: the landmark model on test photographs with an eye, the nose or the mouth covered.

Each LFPW test photograph is scored clean, then once per part with a flat block over that
part: the box of its annotated points, padded by 0.15 outer-eye distances, filled with the face's
mean gray (a hand, a microphone, a scarf; sunglasses over one eye). The crop is framed on the
annotation, so the detector is out of the measure: the rows compare what the network places
with part of the face hidden. Columns: NME over all 68 points, failures (NME > 0.10), the NME of
the hidden points alone, and the share of faces the face score would drop (under 0.5, as
detect.py drops a detection before its second look). ``--dlib`` adds dlib's predictor, given the
box its HOG detector finds in the clean photograph, so neither framing sees the block.

    python benchmarks/occlusion.py [--checkpoint PATH ...] [--dlib] [--faces DIR] [--subset N] [--json out.json]
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import cli  # noqa: E402
import data_files  # noqa: E402
from atomic import write_json  # noqa: E402
from checkpoint import CheckpointError  # noqa: E402
from data_300w import PhotoFaces, read_sources  # noqa: E402
from data_load import cover_part  # noqa: E402
from evaluate import score  # noqa: E402
from face_detector import to_gray  # noqa: E402
from framing import match_box  # noqa: E402
from geometry import face_square  # noqa: E402
from keypointer import DEFAULT_CHECKPOINT, MIN_FACE_SCORE, Keypointer  # noqa: E402
from markup import COVERED_PARTS  # noqa: E402
from metrics import point_errors  # noqa: E402
from pipeline import keypoints_for_rois  # noqa: E402
from benchmarks.dlib_vs_cnn import lfpw_dir  # noqa: E402

DLIB = "dlib (its HOG box on the clean photograph)"


def occluded(image, keypoints, part):
    """A copy of ``image`` with a flat block of the face's mean gray over ``part``'s points."""
    return cover_part(image, keypoints, part, gray=to_gray(image))


def occlusion_table(keypointer, items):
    """{condition: score summary + 'hidden_nme' + 'under_face_score'} for 'clean' and each part
    covered, over dataset items, the crop framed on the annotation."""
    def place(image, square):
        points, scores = keypoints_for_rois(to_gray(image), [(square, 0.0)], keypointer)
        return points[0], None if scores is None else scores[0]
    faces = [(item, face_square(item["keypoints"], keypointer.framing_scale)) for item in items]
    return scored_conditions(faces, place)


def dlib_table(items, pipeline=None):
    """The same for dlib's predictor, on the box its HOG detector finds for the face in the clean
    photograph (matched as evaluate.py matches); faces it finds none for are left out.
    ``pipeline``: a (find_boxes, landmarks) pair in its place."""
    if pipeline is None:
        from benchmarks.dlib_vs_cnn import dlib_pipeline, load_dlib
        pipeline = dlib_pipeline(*load_dlib())
    find_boxes, landmarks = pipeline
    faces = []
    for item in items:
        boxes = np.asarray(find_boxes(item["image"]), np.float64).reshape(-1, 4)
        j = match_box(boxes, item["keypoints"])
        if j is not None:
            faces.append((item, boxes[j]))
    return scored_conditions(faces, lambda image, box: (landmarks(image, box), None))


def spread_over(dataset, subset):
    """The dataset's items, or ``subset`` of them spread over it, each read once."""
    count = min(subset or len(dataset), len(dataset))
    return [dataset[int(i)] for i in np.linspace(0, len(dataset) - 1, count).astype(int)]


def scored_conditions(faces, place):
    """Each condition's summary over faces [(item, framing)]; ``place(image, framing)`` gives
    (points, face score or None)."""
    table = {}
    for condition in ("clean", *COVERED_PARTS):
        results, hidden, dropped = [], [], []
        covered = COVERED_PARTS.get(condition)
        for item, framing in faces:
            image, target = item["image"], item["keypoints"]
            if covered:
                image = occluded(image, target, condition)
            points, face_score = place(image, framing)
            errors = point_errors(points, target)
            results.append({"nme": float(errors.mean())})
            if covered:
                hidden.append(errors[covered].mean())
            dropped.append(face_score is not None and face_score < MIN_FACE_SCORE)
        table[condition] = {**score(results), "hidden_nme": float(np.mean(hidden)) if covered else None,
                            "under_face_score": float(np.mean(dropped))}
    return table


def print_table(tables):
    print(f"{'checkpoint':<44} {'condition':<10} {'NME':>7} {'fail':>7} {'hidden':>7} {'score<0.5':>9}")
    for name, table in tables.items():
        for condition, s in table.items():
            hidden = "" if s["hidden_nme"] is None else f"{s['hidden_nme']:7.4f}"
            print(f"{name[-44:]:<44} {condition:<10} {s['nme']:7.4f} {100 * s['failure_rate']:6.2f}% {hidden:>7} "
                  f"{100 * s['under_face_score']:8.2f}%")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", nargs="+", default=[DEFAULT_CHECKPOINT], help="one or more (default: %(default)s)")
    p.add_argument("--faces", help="a 300-W-layout folder (default: LFPW's test set)")
    p.add_argument("--no-second-stage", dest="second_stage", action="store_false",
                   help="the network alone (default: with the checkpoint's second stage, where it has one)")
    p.add_argument("--subset", type=cli.number(int, low=0), default=0,
                   help="only N faces, spread over the set (default: all)")
    p.add_argument("--dlib", action="store_true",
                   help="also dlib's predictor, on its HOG detector's box from the clean photograph "
                        "(pip install dlib-bin face-recognition-models, as make benchmark does)")
    p.add_argument("--json", help="write {checkpoint: {condition: summary}} here")
    args = p.parse_args(argv)
    try:
        dataset = PhotoFaces(read_sources([args.faces or lfpw_dir(None)]))
        keypointers = {c: Keypointer(c, "onnx", second_stage="auto" if args.second_stage else False)
                       for c in args.checkpoint}
    except (data_files.DataError, CheckpointError) as e:
        sys.exit(f"error: {e}")
    items = spread_over(dataset, args.subset)
    tables = {c: occlusion_table(k, items) for c, k in keypointers.items()}
    if args.dlib:
        tables[DLIB] = dlib_table(items)
    print_table(tables)
    if args.json:
        write_json(args.json, tables)


if __name__ == "__main__":
    main()
