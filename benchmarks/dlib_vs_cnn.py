"""Our pipeline against dlib's 68-point predictor on the same 770 test images.

    pip install dlib-bin face-recognition-models     # benchmark-only dependencies
    python benchmarks/dlib_vs_cnn.py [--json saved_models/benchmark.json]

Each side uses its own detector (Haar + padded ROI for the CNN; dlib's HOG detector
for dlib), a missed face counts as a failure and enters the mean NME at 0.10.
Per-face time is the landmark stage alone, batch of one, from the image each pipeline
already holds (gray for ours, as its detector needs; RGB for dlib), measured two ways:
inside the pipeline loop over the test images (median; detection runs between calls, so
thread pools and caches are cold) and warm (the same face of the 640 x 480 frame,
repeated after a warm-up). Both pipelines take turns, image by image and block by block,
so their times come from the same minutes of a machine whose speed drifts. The pipeline
rate is detection + landmarks on that frame.
"""
import argparse
import functools
import importlib.util
import json
import os
import sys
import time

import cv2
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import data_load  # noqa: E402
from checkpoint import CheckpointError  # noqa: E402
from detect import DEFAULT_REFINE, FaceDetector, detect_keypoints, sample_image  # noqa: E402
from evaluate import cnn_pipeline, median_ms, run_on_face, score  # noqa: E402
from keypointer import DEFAULT_CHECKPOINT, Keypointer  # noqa: E402

FRAME_RUNS = 100
WARM_RUNS, WARM_BLOCKS, WARM_UP = 400, 20, 5   # 20 alternating blocks of 20 calls


def load_dlib():
    """dlib's HOG detector and 68-point predictor, or a clear message if absent."""
    try:
        import dlib
    except ImportError:
        sys.exit("error: dlib is not installed: pip install dlib-bin face-recognition-models")
    # face_recognition_models imports pkg_resources (gone from recent setuptools): find
    # its data folder without importing it.
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None:
        sys.exit("error: face-recognition-models is not installed: pip install face-recognition-models")
    path = os.path.join(spec.submodule_search_locations[0], "models", "shape_predictor_68_face_landmarks.dat")
    return dlib, dlib.get_frontal_face_detector(), dlib.shape_predictor(path)


def dlib_pipeline(dlib, detector, predictor):
    def find_boxes(image, target=None):
        return [(r.left(), r.top(), r.width(), r.height()) for r in detector(image, 1)]

    def landmarks(image, box):
        x, y, w, h = (int(v) for v in box)
        shape = predictor(image, dlib.rectangle(x, y, x + w, y + h))
        return np.array([(p.x, p.y) for p in shape.parts()], np.float32)
    return find_boxes, landmarks


def results_side_by_side(data_dir, pipelines, subset=0):
    """{name: per-face results} on the test split, every image through each pipeline in
    turn, so the loop times of both come from the same minutes of the machine."""
    dataset = data_load.FacialKeypointsDataset(*data_load.split_paths(data_dir, "test"))
    results = {name: [] for name in pipelines}
    for i in range(subset or len(dataset)):
        item = dataset[i]
        for name, (find_boxes, landmarks) in pipelines.items():
            results[name].append(run_on_face(item, find_boxes, landmarks))
    return results


def frame_640x480():
    """The sample face on a 640 x 480 frame."""
    frame = np.full((480, 640, 3), 120, np.uint8)
    face = cv2.resize(sample_image(), (400, 400), interpolation=cv2.INTER_AREA)
    frame[40:440, 120:520] = face
    return frame


def frames_per_second(run, frame, runs=FRAME_RUNS):
    for _ in range(5):
        run(frame)
    t0 = time.perf_counter()
    for _ in range(runs):
        run(frame)
    return runs / (time.perf_counter() - t0)


def warm_ms_per_face(pipelines, frame):
    """{name: median milliseconds of its landmark stage on the frame's face}, called back
    to back after a warm-up. The pipelines take turns in WARM_BLOCKS blocks, so both see
    the same machine: shared cores drift by tens of percent within a minute."""
    calls = {}
    for name, (find_boxes, landmarks) in pipelines.items():
        box = np.asarray(find_boxes(frame), float)[0]
        calls[name] = functools.partial(landmarks, frame, box)
    block_ms = {name: [] for name in calls}
    for _ in range(WARM_BLOCKS):
        for name, call in calls.items():
            block_ms[name].append(median_ms(call, WARM_RUNS // WARM_BLOCKS, WARM_UP))
    return {name: float(np.median(ms)) for name, ms in block_ms.items()}


def row(name, results, fps, warm_ms):
    summary = score(results)
    summary.update(name=name, fps_640x480=fps, warm_ms_per_face=warm_ms,
                   ms_per_face=1000 * float(np.median([r["seconds"] for r in results if "seconds" in r])))
    return summary


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", default=DEFAULT_CHECKPOINT)
    p.add_argument("--data-dir")
    p.add_argument("--refine", type=int, default=DEFAULT_REFINE, help="re-framing passes (default: %(default)s)")
    p.add_argument("--threads", type=int, default=0,
                   help="ONNX Runtime threads for the CNN (default: 0, one per core; dlib uses one)")
    p.add_argument("--subset", type=int, default=0)
    p.add_argument("--json", help="write the table as JSON here")
    args = p.parse_args(argv)
    dlib, dlib_detector, predictor = load_dlib()
    try:
        data_dir = data_load.resolve_data_dir(args.data_dir)
        keypointer = Keypointer(args.checkpoint, "onnx", threads=args.threads)
    except (data_load.DataError, CheckpointError) as e:
        sys.exit(f"error: {e}")
    haar = FaceDetector()
    frame = frame_640x480()
    find, mark = dlib_pipeline(dlib, dlib_detector, predictor)
    pipelines = {"cnn": cnn_pipeline(keypointer, "haar", haar, refine=args.refine), "dlib": (find, mark)}
    results = results_side_by_side(data_dir, pipelines, args.subset)
    warm = warm_ms_per_face(pipelines, frame)
    fps = {"cnn": frames_per_second(lambda f: detect_keypoints(f, haar, keypointer, refine=args.refine), frame),
           "dlib": frames_per_second(lambda f: [mark(f, b) for b in np.asarray(find(f), float)], frame)}
    ours = row(f"CNN (Haar + {type(keypointer.model).__name__}, ONNX Runtime)", results["cnn"], fps["cnn"], warm["cnn"])
    theirs = row("dlib (HOG + 68-point shape predictor)", results["dlib"], fps["dlib"], warm["dlib"])
    table = [ours, theirs]
    print(f"{'':42s} {'NME':>7s} {'fail':>7s} {'AUC@.1':>7s} {'detect':>7s} {'ms/face':>8s} {'warm ms':>8s} {'fps':>6s}")
    for r in table:
        print(f"{r['name']:42s} {r['nme']:7.4f} {r['failure_rate']:7.2%} {r['auc']:7.3f} "
              f"{r['detection_rate']:7.2%} {r['ms_per_face']:8.3f} {r['warm_ms_per_face']:8.3f} {r['fps_640x480']:6.1f}")
    ratio = ours["ms_per_face"] / theirs["ms_per_face"]
    warm_ratio = ours["warm_ms_per_face"] / theirs["warm_ms_per_face"]
    print(f"per-face time, CNN / dlib: {ratio:.2f} in the pipeline loop, {warm_ratio:.2f} warm")
    if args.json:
        with open(args.json + ".tmp", "w") as f:
            json.dump({"rows": table, "time_ratio": ratio, "warm_time_ratio": warm_ratio, "refine": args.refine,
                       "threads": args.threads},
                      f, indent=2)
        os.replace(args.json + ".tmp", args.json)


if __name__ == "__main__":
    main()
