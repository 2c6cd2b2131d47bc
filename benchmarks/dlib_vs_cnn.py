"""Our pipeline against dlib's 68-point predictor, on the same images: Udacity's 770 test
images and the 224 photographs of LFPW's test set (300-W markup).

    pip install dlib-bin face-recognition-models     # benchmark-only dependencies
    python benchmarks/dlib_vs_cnn.py [--json saved_models/results/benchmark.json]

Three pipelines run on both sets: the in-the-wild CNN (300-W markup), the Udacity CNN
(Udacity markup) and dlib (trained on 300-W). Each uses its own detector (Haar + padded ROI
for the CNNs, dlib's HOG detector for dlib); a missed face counts as a failure and enters the
mean NME at 0.10. dlib's points (0-based pixel centres) are moved by +0.5 px into the
project's convention (data_300w.py), as the .pts ground truth is.
Per-face time is the landmark stage alone, batch of one, from the image each pipeline
already holds (gray for ours, as its detector needs; RGB for dlib), measured two ways:
inside the pipeline loop over the test images (median; detection runs between calls, so
thread pools and caches are cold) and warm (the same face of the 640 x 480 frame,
repeated after a warm-up). The pipelines take turns, image by image and block by block,
so their times come from the same minutes of a machine whose speed drifts. The pipeline
rate is detection + landmarks on that frame.
"""
import argparse
import functools
import importlib.util
import os
import sys
import time

import cv2
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import data_files
import data_load  # noqa: E402
from atomic import write_json  # noqa: E402
from data_300w import DLIB_OFFSET, WILD_DIR_ENV, PhotoFaces, find_300w_dir, read_sources  # noqa: E402
from checkpoint import CheckpointError  # noqa: E402
from detect import add_second_stage_options, sample_image  # noqa: E402
from face_detector import FaceDetector  # noqa: E402
from pipeline import DEFAULT_REFINE, detect_keypoints  # noqa: E402
from evaluate import cnn_pipeline, median_ms, run_on_face, score  # noqa: E402
from keypointer import DEFAULT_CHECKPOINT, UDACITY_CHECKPOINT, Keypointer  # noqa: E402

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
        return np.array([(p.x, p.y) for p in shape.parts()], np.float32) + DLIB_OFFSET
    return find_boxes, landmarks


def results_side_by_side(dataset, pipelines, subset=0):
    """{name: per-face results} on ``dataset``, every image through each pipeline in
    turn, so the loop times of all come from the same minutes of the machine."""
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


def row(name, test_set, results, fps, warm_ms):
    summary = score(results)
    seconds = [r["seconds"] for r in results if "seconds" in r]
    summary.update(name=name, set=test_set, fps_640x480=fps, warm_ms_per_face=warm_ms,
                   ms_per_face=1000 * float(np.median(seconds)), mean_ms_per_face=1000 * float(np.mean(seconds)))
    return summary


def lfpw_dir(path):
    """The LFPW test folder: the argument, else lfpw/testset of $FKP_300W_DIR or ../shared's 300-W."""
    if path:
        return path
    root = find_300w_dir()
    if root is None:
        raise data_files.DataError(f"no 300-W copy: set ${WILD_DIR_ENV} or pass --lfpw")
    return os.path.join(root, "lfpw", "testset")


def print_table(table, ratios):
    print(f"{'':16s}{'':44s} {'NME':>7s} {'fail':>7s} {'AUC@.1':>7s} {'detect':>7s} {'ms/face':>8s} "
          f"{'warm ms':>8s} {'fps':>6s}")
    for r in table:
        print(f"{r['set']:16s}{r['name']:44s} {r['nme']:7.4f} {r['failure_rate']:7.2%} {r['auc']:7.3f} "
              f"{r['detection_rate']:7.2%} {r['ms_per_face']:8.3f} {r['warm_ms_per_face']:8.3f} {r['fps_640x480']:6.1f}")
    for name, (loop, mean, warm) in ratios.items():
        print(f"per-face time, {name} / dlib: {loop:.2f} in the pipeline loop (both sets; {mean:.2f} of the mean), "
              f"{warm:.2f} warm")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", default=DEFAULT_CHECKPOINT, help="the in-the-wild CNN (default: %(default)s)")
    p.add_argument("--udacity-checkpoint", default=UDACITY_CHECKPOINT, help="the Udacity CNN (default: %(default)s)")
    p.add_argument("--data-dir", help=f"Udacity dataset root (default: ${data_files.DATA_DIR_ENV} or ./data)")
    p.add_argument("--lfpw", help=f"LFPW test folder (default: lfpw/testset of ${WILD_DIR_ENV} or ../shared/data/300w)")
    p.add_argument("--refine", type=int, default=DEFAULT_REFINE, help="re-framing passes (default: %(default)s)")
    p.add_argument("--threads", type=int, default=1,
                   help="ONNX Runtime threads for the CNN (default: 1, as detect.py; dlib uses one)")
    add_second_stage_options(p)
    p.add_argument("--flip", action=argparse.BooleanOptionalAction, default=False,
                   help="the in-the-wild CNN also predicts on each mirrored face and averages (default: %(default)s)")
    p.add_argument("--subset", type=int, default=0, help="only the first N images of each set")
    p.add_argument("--json", help="write the table as JSON here")
    args = p.parse_args(argv)
    dlib, dlib_detector, predictor = load_dlib()
    try:
        sets = {"Udacity test": data_load.FacialKeypointsDataset(
                    *data_files.split_paths(data_files.resolve_data_dir(args.data_dir), "test")),
                "LFPW test": PhotoFaces(read_sources([lfpw_dir(args.lfpw)]))}
        wild_keypointer = Keypointer(args.checkpoint, "onnx", threads=args.threads, second_stage=args.second_stage,
                                     flip=args.flip)
        wild = ("CNN in the wild + second stage" if wild_keypointer.second_stage else "CNN in the wild, network alone") \
            + (" + flip" if args.flip else "")
        cnns = {wild: wild_keypointer,
                "CNN Udacity (Udacity markup)": Keypointer(args.udacity_checkpoint, "onnx", threads=args.threads)}
    except (data_files.DataError, CheckpointError) as e:
        sys.exit(f"error: {e}")
    haar = FaceDetector()
    frame = frame_640x480()
    pipelines = {name: cnn_pipeline(k, "haar", haar, refine=args.refine) for name, k in cnns.items()}
    find, mark = dlib_pipeline(dlib, dlib_detector, predictor)
    dlib_name = "dlib (HOG + 68-point shape predictor)"
    pipelines[dlib_name] = (find, mark)
    results = {set_name: results_side_by_side(dataset, pipelines, args.subset) for set_name, dataset in sets.items()}
    warm = warm_ms_per_face(pipelines, frame)
    fps = {name: frames_per_second(lambda f, k=k: detect_keypoints(f, haar, k, refine=args.refine), frame)
           for name, k in cnns.items()}
    fps[dlib_name] = frames_per_second(lambda f: [mark(f, b) for b in np.asarray(find(f), float)], frame)
    table = [row(name, set_name, rows, fps[name], warm[name])
             for set_name, by_pipeline in results.items() for name, rows in by_pipeline.items()]

    def loop_ms(name, average=np.median):
        return 1000 * float(average([r["seconds"] for by in results.values() for r in by[name] if "seconds" in r]))
    # the mean counts the faces cut a second time (pipeline.misframed); the median is a typical face
    ratios = {name: (loop_ms(name) / loop_ms(dlib_name), loop_ms(name, np.mean) / loop_ms(dlib_name, np.mean),
                     warm[name] / warm[dlib_name]) for name in cnns}
    print_table(table, ratios)
    if args.json:
        write_json(args.json, {"rows": table, "time_ratios": {n: {"loop": a, "loop_mean": m, "warm": b}
                                                              for n, (a, m, b) in ratios.items()},
                               "refine": args.refine, "threads": args.threads,
                               "second_stage": wild_keypointer.second_stage, "flip": args.flip})


if __name__ == "__main__":
    main()
