"""Face detection: recall, false faces and time per frame, for each search option and dlib's HOG.

    python benchmarks/detection.py [--json outputs/detection.json] [--every 2]

Recall: the share of annotated faces with a detection whose centre lies within half the
keypoint box of the face's (framing.match_box), on Udacity's test images, LFPW's test
photographs and AFW's photographs (several faces each, many turned). False faces: detections on
face-free images, scikit-image's samples without a face and crops of Udacity training frames away
from the face. Time: median per 640x480 frame (the astronaut on a gray canvas). Each search runs
alone and followed by the landmark model's face score (detections scoring under 0.5 dropped; the
time then includes the landmark pass).
"""
import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import data_300w  # noqa: E402
import data_files
import data_load  # noqa: E402
from atomic import write_json  # noqa: E402
from face_detector import FaceDetector, to_gray  # noqa: E402
from framing import match_box  # noqa: E402
from keypointer import DEFAULT_CHECKPOINT, MIN_FACE_SCORE, Keypointer  # noqa: E402
from pipeline import detect_keypoints  # noqa: E402
from benchmarks.samples import gray_sample  # noqa: E402

# "camera" (the cameraman) is left out: his face is a face, whichever detector finds it
FACE_FREE_SAMPLES = ("brick", "cell", "checkerboard", "clock", "coffee", "coins", "colorwheel", "grass",
                     "gravel", "horse", "hubble_deep_field", "immunohistochemistry", "logo", "microaneurysms",
                     "moon", "page", "retina", "rocket", "text", "cat", "chelsea")
OPTIONS = {"frontal": ("frontal", {}), "profile": ("+ profile", {"profile": True}),
           "rotations": ("+ rotations ±25°", {"rotations": (-25, 25)}),
           "both": ("+ profile + rotations ±25°", {"profile": True, "rotations": (-25, 25)}),
           "both-if-none": ("+ both, where upright finds none",
                            {"profile": True, "rotations": (-25, 25), "only_when_empty": True})}


def scored(detector, keypointer, min_score=MIN_FACE_SCORE):
    """The detector's boxes that the landmark model scores as faces, as the pipeline keeps them
    (a low-scoring box is looked at once more: pipeline.detect_keypoints)."""
    def detect(gray):
        faces = detect_keypoints(gray, detector, keypointer, min_score=min_score, align=None)
        return np.array([f["box"] for f in faces], np.float64).reshape(-1, 4)
    return detect


def annotated_sets(data_dir, every):
    test = data_load.FacialKeypointsDataset(*data_files.split_paths(data_dir, "test"))
    sets = {"Udacity test": [(test.image(i), [test.keypoints[i]]) for i in range(0, len(test), every)]}
    root = data_300w.find_300w_dir()
    for name, folder in (("LFPW test", "lfpw/testset"), ("AFW", "afw")):
        if root is None:
            continue
        by_image = {}
        for face in data_300w.scan_300w(os.path.join(root, folder)):
            by_image.setdefault(face.image_path, []).append(face.keypoints)
        paths = sorted(by_image)[::every]
        sets[name] = [(data_files.load_image(p), by_image[p]) for p in paths]
    return sets


def face_free_images(data_dir, n_crops=40):
    images = [gray_sample(name) for name in FACE_FREE_SAMPLES]
    train = data_load.FacialKeypointsDataset(*data_files.split_paths(data_dir, "train"))
    rng = np.random.default_rng(0)
    for i in rng.choice(len(train), n_crops, replace=False):
        gray = to_gray(train.image(i))
        lo, hi = train.keypoints[i].min(0), train.keypoints[i].max(0)
        strips = [gray[:, :max(0, int(lo[0]) - 5)], gray[:, int(hi[0]) + 5:], gray[int(hi[1]) + 5:]]
        strip = max(strips, key=lambda s: min(s.shape) if s.size else 0)
        if min(strip.shape) >= 40:
            images.append(np.ascontiguousarray(strip))
    return images


def frame_640x480():
    from skimage import data
    frame = np.full((480, 640), 110, np.uint8)
    frame[:, 64:576] = to_gray(data.astronaut())[32:512]
    return frame


def measure(detect, sets, face_free, frame, runs):
    row = {}
    for name, items in sets.items():
        found = total = 0
        for image, faces in items:
            boxes = detect(to_gray(image))
            total += len(faces)
            found += sum(match_box(boxes, kp) is not None for kp in faces)
        row[f"recall {name}"] = found / total
    row["false faces"] = int(sum(len(detect(image)) for image in face_free))
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        detect(frame)
        times.append(time.perf_counter() - t0)
    row["ms per 640x480 frame"] = 1000 * float(np.median(times))
    return row


def dlib_detector():
    try:
        import dlib
    except ImportError:
        return None
    hog = dlib.get_frontal_face_detector()

    def detect(gray):
        return np.array([[r.left(), r.top(), r.width(), r.height()] for r in hog(gray, 1)], np.float64).reshape(-1, 4)
    return detect


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", help="Udacity data (default: $FKP_DATA_DIR, else ./data)")
    p.add_argument("--every", type=int, default=1, help="use every Nth image of each set (default: %(default)s)")
    p.add_argument("--runs", type=int, default=20, help="timed runs on the 640x480 frame (default: %(default)s)")
    p.add_argument("--json", help="write the table as JSON here")
    p.add_argument("--rows", default=",".join(OPTIONS), help="the searches to measure (default: %(default)s)")
    p.add_argument("--no-dlib", action="store_true", help="leave dlib's HOG out")
    p.add_argument("--checkpoint", default=DEFAULT_CHECKPOINT, help="the face score's model (default: %(default)s)")
    args = p.parse_args(argv)
    unknown = [key for key in args.rows.split(",") if key not in OPTIONS]
    if unknown:
        sys.exit(f"error: --rows: {unknown[0]!r} is not one of {', '.join(OPTIONS)}")
    try:
        data_dir = data_files.resolve_data_dir(args.data_dir)
    except data_files.DataError as e:
        sys.exit(f"error: {e}")
    sets, face_free, frame = annotated_sets(data_dir, args.every), face_free_images(data_dir), frame_640x480()
    print(f"{', '.join(f'{k}: {sum(len(f) for _, f in v)} faces' for k, v in sets.items())}; "
          f"{len(face_free)} face-free images", flush=True)
    keypointer = Keypointer(args.checkpoint)
    detectors = {}
    for key in args.rows.split(","):
        name, kwargs = OPTIONS[key]
        detectors[name] = FaceDetector(**kwargs)
        detectors[f"{name} + face score"] = scored(detectors[name], keypointer)
    if dlib_detector() is not None and not args.no_dlib:
        detectors["dlib HOG (upsampled once)"] = dlib_detector()
    table = {}
    for name, detect in detectors.items():
        table[name] = measure(detect, sets, face_free, frame, args.runs)
        print(f"{name:40s} " + "  ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}"
                                         for k, v in table[name].items()), flush=True)
    if args.json:
        write_json(args.json, table)


if __name__ == "__main__":
    main()
