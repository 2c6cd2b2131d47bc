"""Time per video frame of the whole pipeline, stage by stage, on 640x480 frames.

Detecting every frame: the upright search, the landmark pass (with the face score and any
second cut) and drawing, timed apart on the astronaut on a gray 640x480 canvas. Tracking: the
tracker (benchmarks/clips.py's clip, face in view) and drawing per frame. Decoding and
encoding a file are left out (benchmarks/video.py times those end to end). Medians of ``runs``.

    python benchmarks/frame_time.py [--checkpoint PATH] [--runs 30]
"""
import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import data_files  # noqa: E402
from benchmarks import clips  # noqa: E402
from benchmarks.detection import frame_640x480  # noqa: E402
from detect import STREAM_SEARCH, draw_faces  # noqa: E402
from evaluate import load_test_split  # noqa: E402
from face_detector import FaceDetector  # noqa: E402
from framing import DEFAULT_MARGIN  # noqa: E402
from keypointer import DEFAULT_CHECKPOINT, MIN_FACE_SCORE, Keypointer  # noqa: E402
from pipeline import DEFAULT_REFINE, ROLL_ALIGN_DEGREES, detections, scored_faces  # noqa: E402
from tracking import FaceTracker  # noqa: E402


def _ms(call, runs):
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        out = call()
        times.append(time.perf_counter() - t0)
    return 1000 * float(np.median(times)), out


def frame_times(keypointer, photo, keypoints, runs=30):
    """{stage: ms} for detecting every frame and for tracking (see the module docstring)."""
    gray = frame_640x480()
    detector = FaceDetector.searching(STREAM_SEARCH)
    detect_ms, (boxes, angles) = _ms(lambda: detections(detector, gray), runs)
    landmark_ms, faces = _ms(lambda: scored_faces(gray, boxes, keypointer, DEFAULT_MARGIN, DEFAULT_REFINE,
                                                  MIN_FACE_SCORE, ROLL_ALIGN_DEGREES, angles), runs)
    draw_ms, _ = _ms(lambda: draw_faces(gray, faces), runs)
    frames, _ = clips.make_clip(photo, keypoints)
    frames = frames[:clips.in_view_frames()]
    tracker, track_times, draw_times = FaceTracker(detector, keypointer), [], []
    for i, frame in enumerate(frames):
        t0 = time.perf_counter()
        tracked = tracker(frame, i / clips.FPS)
        t1 = time.perf_counter()
        draw_faces(frame, tracked)
        track_times.append(t1 - t0)
        draw_times.append(time.perf_counter() - t1)
    every = {"detection": detect_ms, "landmarks": landmark_ms, "drawing": draw_ms}
    tracked = {"tracking (detector every 30th frame)": 1000 * float(np.median(track_times)),
               "drawing": 1000 * float(np.median(draw_times))}
    return {"detecting every frame": every, "tracked": tracked}


def print_times(times):
    for mode, stages in times.items():
        total = sum(stages.values())
        print(f"{mode}: " + ", ".join(f"{k} {v:.1f} ms" for k, v in stages.items()) +
              f"; total {total:.1f} ms, {1000 / total:.0f} frames/s")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", default=DEFAULT_CHECKPOINT, help="(default: %(default)s)")
    p.add_argument("--data-dir", help=f"dataset root (default: ${data_files.DATA_DIR_ENV} or ./data)")
    p.add_argument("--runs", type=int, default=30, help="timed runs per stage (default: %(default)s)")
    p.add_argument("--no-flip", action="store_true", help="no mirrored pass (detect.py's video default has one)")
    args = p.parse_args(argv)
    try:
        test = load_test_split(data_files.resolve_data_dir(args.data_dir))
    except data_files.DataError as e:
        sys.exit(f"error: {e}")
    item = test[0]
    keypointer = Keypointer(args.checkpoint, second_stage="auto", flip=not args.no_flip)
    print_times(frame_times(keypointer, item["image"], item["keypoints"], args.runs))


if __name__ == "__main__":
    main()
