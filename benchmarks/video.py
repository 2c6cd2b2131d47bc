"""Video: tracked vs --no-track vs dlib per frame, on clips with exact ground truth in every frame.

    python benchmarks/video.py [--clips 3] [--json outputs/video.json] [--sweep]

Each clip (benchmarks/clips.py) moves an annotated photograph about a 640x480 frame, takes it
out and brings it back. Tracked and --no-track run the whole of detect.py's video path
(decoding, landmarks, drawing, encoding an mp4), timed end to end, on the clip's first part
(the face in view all along) and on the whole clip; dlib runs its HOG detector
and 68-point predictor on every decoded frame (no drawing or writing). NME, jitter, false faces
and frames to re-acquire as in clips.clip_scores. ``--sweep`` scores smoothing settings on the
tracked keypoints (smoothing does not change what the tracker crops, so it replays exactly), on
the clips as they are and with each of clips.EXPRESSIONS added, against one One Euro filter on
the whole face (the previous default).
Photographs: LFPW's test set where a 300-W copy exists, else Udacity's test images.
"""
import argparse
import os
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import data_300w  # noqa: E402
import data_files
import data_load  # noqa: E402
from atomic import write_json  # noqa: E402
from benchmarks import clips  # noqa: E402
from detect import draw_faces, face_record  # noqa: E402
from pipeline import detect_keypoints  # noqa: E402
from face_detector import FaceDetector, to_gray  # noqa: E402
from keypointer import DEFAULT_CHECKPOINT, Keypointer  # noqa: E402
from tracking import (SMOOTH_BETA, SMOOTH_MIN_CUTOFF, SMOOTH_SHAPE_BETA, FaceTracker, OneEuroFilter,  # noqa: E402
                      PoseShapeFilter, face_size)
from video import frames_of, run_video  # noqa: E402

DEFAULT_SMOOTH = (SMOOTH_MIN_CUTOFF, SMOOTH_BETA, SMOOTH_SHAPE_BETA)
SWEEP_BETAS, SWEEP_SHAPE_BETAS = (10.0, 20.0, 30.0, 40.0, 60.0, 100.0), (20.0, 40.0, 60.0, 80.0, 160.0)
WHOLE_FACE = (0.5, 20.0)              # the previous default: one One Euro filter on all 68 points
WHOLE_FACE_KEY = f"whole face {WHOLE_FACE[0]},{WHOLE_FACE[1]:g}"     # the sweep's reference


class Counted:
    """A detector that counts its calls."""

    def __init__(self, detector):
        self.detector, self.calls = detector, 0

    def __call__(self, gray):
        self.calls += 1
        return self.detector(gray)


def photographs(n, data_dir, lfpw_set="testset"):
    """n annotated (image, keypoints) pairs, spread over the set, one face each."""
    root = data_300w.find_300w_dir()
    if root is not None:
        faces = data_300w.scan_300w(os.path.join(root, "lfpw", lfpw_set))
        picks = [faces[i] for i in np.linspace(0, len(faces) - 1, n).astype(int)]
        return [(data_files.load_image(f.image_path), f.keypoints) for f in picks]
    test = data_load.FacialKeypointsDataset(*data_files.split_paths(data_dir, "test"))
    return [(test.image(i), test.keypoints[i]) for i in np.linspace(0, len(test) - 1, n).astype(int)]


def points_of(records):
    return [np.array([f["keypoints"] for f in r["faces"]], np.float64).reshape(-1, 68, 2) for r in records]


def run_ours(path, out, process):
    start = time.perf_counter()
    records = run_video(path, out, process, draw_faces, face_record)
    return points_of(records), len(records) / (time.perf_counter() - start)


def run_dlib(path):
    from benchmarks.dlib_vs_cnn import DLIB_OFFSET, load_dlib
    import cv2
    dlib, hog, predictor = load_dlib()
    capture, predicted = cv2.VideoCapture(path), []
    start = time.perf_counter()
    for rgb in frames_of(capture):
        gray = to_gray(rgb)
        predicted.append(np.array([[(p.x, p.y) for p in predictor(gray, r).parts()] for r in hog(gray, 1)],
                                  np.float64).reshape(-1, 68, 2) + DLIB_OFFSET)
    return predicted, len(predicted) / (time.perf_counter() - start)


def smoothed(predicted, settings, make=PoseShapeFilter):
    """A smoother on a single tracked face's keypoints, replayed frame by frame."""
    smooth, out = make(*settings), []
    for i, faces in enumerate(predicted):
        if len(faces) == 0:
            smooth = make(*settings)                         # a lost face starts afresh
            out.append(faces)
        else:
            out.append(np.array([smooth(faces[0], i / clips.FPS, face_size(faces[0]))] + list(faces[1:])))
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clips", type=int, default=3, help="clips, one photograph each (default: %(default)s)")
    p.add_argument("--checkpoint", default=DEFAULT_CHECKPOINT, help="(default: %(default)s)")
    p.add_argument("--data-dir", help="Udacity data, used without a 300-W copy (default: $FKP_DATA_DIR, else ./data)")
    p.add_argument("--no-dlib", action="store_true", help="leave dlib out")
    p.add_argument("--sweep", action="store_true", help="also score smoothing settings on the tracked keypoints")
    p.add_argument("--lfpw", choices=("testset", "trainset"), default="testset",
                   help="whose photographs make the clips, given a 300-W copy: the smoothing defaults were chosen "
                        "on 6 clips of the training set's (default: %(default)s)")
    p.add_argument("--flip", action=argparse.BooleanOptionalAction, default=True,
                   help="average each face with its mirror, as detect.py does on videos (default: %(default)s)")
    p.add_argument("--json", help="write the table as JSON here")
    args = p.parse_args(argv)
    try:
        keypointer = Keypointer(args.checkpoint, second_stage="auto", flip=args.flip)     # as detect.py runs it
        pictures = photographs(args.clips, data_files.resolve_data_dir(args.data_dir) if not data_300w.find_300w_dir()
                               else None, args.lfpw)
    except (data_files.DataError, ValueError) as e:
        sys.exit(f"error: {e}")
    rows, sweep = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for c, (photo, keypoints) in enumerate(pictures):
            frames, truth = clips.make_clip(photo, keypoints)
            path, in_view = os.path.join(tmp, f"clip{c}.mp4"), os.path.join(tmp, f"clip{c}_in_view.mp4")
            clips.write_clip(path, frames)
            clips.write_clip(in_view, frames[:clips.in_view_frames()])
            detector = Counted(FaceDetector())
            raw, fps_all = run_ours(path, os.path.join(tmp, "tracked.mp4"), FaceTracker(detector, keypointer, smooth=None))
            calls, fps = detector.calls, run_ours(in_view, os.path.join(tmp, "tracked.mp4"), FaceTracker(
                FaceDetector(), keypointer, smooth=DEFAULT_SMOOTH))[1]
            runs = {"tracked (default)": (smoothed(raw, DEFAULT_SMOOTH), fps, fps_all, calls),
                    "tracked, raw keypoints": (raw, fps, fps_all, calls)}
            detector = Counted(FaceDetector())

            def per_frame(rgb, seconds):
                return detect_keypoints(rgb, detector, keypointer)
            predicted, fps_all = run_ours(path, os.path.join(tmp, "plain.mp4"), per_frame)
            calls = detector.calls
            runs["--no-track"] = (predicted, run_ours(in_view, os.path.join(tmp, "plain.mp4"), per_frame)[1], fps_all, calls)
            if not args.no_dlib:
                predicted, fps_all = run_dlib(path)
                runs["dlib per frame"] = (predicted, run_dlib(in_view)[1], fps_all, len(frames))
            for name, (predicted, fps, fps_all, calls) in runs.items():
                row = clips.clip_scores(predicted, truth)
                row.update({"frames/s": fps, "frames/s, whole clip": fps_all, "detector calls per frame": calls / len(frames)})
                rows.setdefault(name, []).append(row)
            if args.sweep:
                sweep_clip(sweep, raw, truth)
    table = {name: {k: _mean([r[k] for r in runs]) for k in runs[0]} for name, runs in rows.items()}
    print(f"\n{len(pictures)} clips of {clips.frame_count()} frames, 640x480, {clips.FPS} frames/s")
    print("frames/s: end to end while the face is in view (the first "
          f"{clips.in_view_frames()} frames); whole clip: with the frames where it is away")
    print("NME and jitter: over the still and moving frames, before the face leaves")
    print(f"{'':24s} {'frames/s':>9s} {'whole clip':>10s} {'NME':>7s} {'jitter':>7s} {'detector/frame':>15s} "
          f"{'false faces':>12s} {'re-acquire':>11s}")
    for name, r in table.items():
        print(f"{name:24s} {r['frames/s']:9.1f} {r['frames/s, whole clip']:10.1f} {r['nme']:7.4f} {r['jitter']:7.4f} {r['detector calls per frame']:15.3f} "
              f"{r['false_faces']:12.1f} {r['frames_to_reacquire']:11.1f}")
    sweep = {setting: {case: {m: _mean([r[m] for r in runs]) for m in ("nme", "jitter")} for case, runs in cases.items()}
             for setting, cases in sweep.items()}
    if sweep:
        print("\nSmoothing (cut-off Hz, pose beta, shape beta; or one filter on the whole face): NME / jitter; "
              "balance: NME and jitter over the whole-face filter's, averaged (lower is better)")
        balances = {setting: balance(cases, sweep[WHOLE_FACE_KEY]) for setting, cases in sweep.items()}
        print(f"  {'':26s}" + "".join(f"{case:>18s}" for case in next(iter(sweep.values()))) + f"{'balance':>9s}")
        for setting, cases in sweep.items():
            print(f"  {setting:26s}" + "".join(f"{c['nme']:10.4f} /{c['jitter']:.4f}" for c in cases.values())
                  + f"{balances[setting]:9.4f}")
        print(f"best balance: {min(balances, key=balances.get)}")
    if args.json:
        write_json(args.json, {"clips": table, "sweep": sweep} | ({"balance": balances} if sweep else {}))


def balance(cases, reference):
    """How a smoothing setting trades error against jitter, one figure: its NME and jitter over the
    reference's, averaged over the two and over the cases (still and each expression)."""
    return float(np.mean([(c["nme"] / r["nme"] + c["jitter"] / r["jitter"]) / 2
                          for c, r in zip(cases.values(), reference.values())]))


def sweep_clip(sweep, raw, truth):
    """Scores of each smoothing setting on one clip's tracked keypoints, as they are and with each
    synthetic expression, into ``sweep[setting][case]`` lists."""
    cases = [("still photograph", raw, truth)]
    cases += [(name, *clips.with_expression(raw, truth, hz, opening)) for name, hz, opening in clips.EXPRESSIONS]
    settings = {WHOLE_FACE_KEY: (WHOLE_FACE, OneEuroFilter)}
    settings.update({f"{SMOOTH_MIN_CUTOFF},{beta:g},{shape:g}": ((SMOOTH_MIN_CUTOFF, beta, shape), PoseShapeFilter)
                     for beta in SWEEP_BETAS for shape in SWEEP_SHAPE_BETAS})
    for setting, (values, make) in settings.items():
        for case, predicted, target in cases:
            sweep.setdefault(setting, {}).setdefault(case, []).append(clips.clip_scores(smoothed(predicted, values, make),
                                                                                        target))


def _mean(values):
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else float("nan")


if __name__ == "__main__":
    main()
