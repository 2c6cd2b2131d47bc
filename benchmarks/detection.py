"""Face detection: recall, false faces and time, for each search (face_detector.SEARCHES) and dlib's HOG.

    python benchmarks/detection.py [--json outputs/detection.json] [--every 2]

Recall: the share of annotated faces with a detection whose centre lies within half the
keypoint box of the face's (framing.match_box), on Udacity's test images, LFPW's test
photographs and AFW's photographs, and separately over the turned faces of all three
(|yaw| > TURNED_YAW degrees, pose.head_pose on the annotation). False faces: detections on
face-free images, scikit-image's samples that show no face (its coins and cameraman show faces,
so they are left out) and crops of Udacity training frames away from the face. Time: median per
640x480 frame (the astronaut on a gray canvas) and per face-free image. Each search runs alone
and followed by the landmark model's face score (detections scoring under 0.5 dropped; the
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
from face_detector import SEARCHES, FaceDetector, to_gray  # noqa: E402
from framing import match_box  # noqa: E402
from keypointer import DEFAULT_CHECKPOINT, MIN_FACE_SCORE, Keypointer  # noqa: E402
from pipeline import detect_keypoints  # noqa: E402
from pose import head_pose  # noqa: E402
from benchmarks.samples import gray_sample  # noqa: E402

# A depicted face is a face: "camera" (the cameraman) and "coins" (heads on Greek coins) are left out
FACE_FREE_SAMPLES = ("brick", "cell", "checkerboard", "clock", "coffee", "colorwheel", "grass",
                     "gravel", "horse", "hubble_deep_field", "immunohistochemistry", "logo", "microaneurysms",
                     "moon", "page", "retina", "rocket", "text", "cat", "chelsea")
OPTIONS = {search: f"--search {search}" for search in SEARCHES}
OPTIONS["uncovered+right-angles"] = "--search uncovered --rotations 90,180,270"
TURNED_YAW = 30.0       # degrees: a face turned further than this counts as turned


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


def is_turned(image, keypoints):
    pose = head_pose(keypoints, image.shape[1], image.shape[0])
    return pose is not None and abs(pose["yaw"]) > TURNED_YAW


def timed(detect, image):
    t0 = time.perf_counter()
    boxes = detect(image)
    return boxes, time.perf_counter() - t0


def measure(detect, sets, face_free, frame, runs):
    row, turned = {}, [0, 0]
    for name, items in sets.items():
        found = total = 0
        for image, faces in items:
            boxes = detect(to_gray(image))
            for kp in faces:
                hit = match_box(boxes, kp) is not None
                found, total = found + hit, total + 1
                if is_turned(image, kp):
                    turned = [turned[0] + hit, turned[1] + 1]
        row[f"recall {name}"] = found / total
    row[f"recall turned (|yaw| > {TURNED_YAW:.0f}°)"] = turned[0] / max(1, turned[1])
    results = [timed(detect, image) for image in face_free]
    row["false faces"] = int(sum(len(boxes) for boxes, _ in results))
    row["ms per face-free image"] = 1000 * float(np.median([seconds for _, seconds in results]))
    row["ms per 640x480 frame"] = 1000 * float(np.median([timed(detect, frame)[1] for _ in range(runs)]))
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
    turned = sum(is_turned(image, kp) for items in sets.values() for image, faces in items for kp in faces)
    print(f"turned faces (|yaw| > {TURNED_YAW:.0f}°): {turned}", flush=True)
    detectors = {}
    for key in args.rows.split(","):
        name, right_angles = OPTIONS[key], (90, 180, 270) if key.endswith("right-angles") else ()
        detectors[name] = FaceDetector.searching(key.split("+")[0], right_angles=right_angles)
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
