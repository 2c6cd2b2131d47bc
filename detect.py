"""Find every face in an image, place its 68 keypoints, and map them onto the original.

    python detect.py                      # built-in sample (skimage astronaut)
    python detect.py photo.jpg --json faces.json
    python detect.py folder/ -o outputs/annotated
    python detect.py clip.mp4             # annotated video, frames per second reported

The default model is the in-the-wild one (saved_models/keypointnet_wild.pt, 300-W markup);
``--checkpoint saved_models/keypointnet.pt`` is the course's Udacity-markup model.

Pipeline (one short function, :func:`detect_keypoints`): Haar cascade (a second one
where the first finds nothing) -> box padded by a margin -> square crop, the framing the
model was trained on -> CNN (all faces as one batch) -> keypoints mapped back into
original-image pixels; optionally re-framed on the predicted keypoints and predicted
again (--refine).
"""
import argparse
import json
import os
import sys
import time

import cv2
import numpy as np

from checkpoint import CheckpointError
from data_load import DataError, crop_square_array, face_square, keypoint_box, load_image, uncrop_points
from keypointer import DEFAULT_CHECKPOINT, Keypointer

CASCADE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "detector_architectures")
DEFAULT_CASCADE = "haarcascade_frontalface_default.xml"
# Tried only on an image where the main cascade finds nothing: it finds the small,
# tightly framed faces the default cascade misses (all 7 of its misses on the test split).
FALLBACK_CASCADE = "haarcascade_frontalface_alt2.xml"
# The keypoint box's centre lies this many box widths below the Haar box's centre,
# and a Haar box padded by 0.3 per side is 1.8x the keypoint box: together they make
# the padded ROI match the training framing (measured by benchmarks/haar_framing.py).
HAAR_CENTER_SHIFT = 0.16
DEFAULT_MARGIN = 0.3
# Re-framing passes on the predicted keypoints. The model trains on the detector's own
# framings, so one pass is enough by default (measured in the model card).
DEFAULT_REFINE = 0
VIDEO_EXTENSIONS = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v"}
OUTPUT_DIR = "outputs"
FACE_PARTS = {"jaw": (range(0, 17), False), "right_brow": (range(17, 22), False),
              "left_brow": (range(22, 27), False), "nose_bridge": (range(27, 31), False),
              "nose_base": (range(31, 36), False), "right_eye": (range(36, 42), True),
              "left_eye": (range(42, 48), True), "outer_lips": (range(48, 60), True),
              "inner_lips": (range(60, 68), True)}


def find_cascade(name):
    """A cascade file: a path, a name in detector_architectures/, or one OpenCV bundles."""
    for path in (name, os.path.join(CASCADE_DIR, name), os.path.join(cv2.data.haarcascades, name)):
        if os.path.isfile(path):
            return path
    raise DataError(f"{name}: cascade not found (looked in {CASCADE_DIR} and OpenCV's data)")


def load_cascade(name):
    path = find_cascade(name)
    cascade = cv2.CascadeClassifier(path)
    if cascade.empty():
        raise DataError(f"{path}: not a valid cascade file")
    return cascade


class FaceDetector:
    """OpenCV Haar cascade, and a second one tried where the first finds no face
    (``fallback=None``: none); images larger than ``max_side`` are downscaled to detect."""

    def __init__(self, cascade=DEFAULT_CASCADE, scale_factor=1.1, min_neighbors=5, min_size=30,
                 max_side=1280, fallback=FALLBACK_CASCADE):
        self.cascades = [load_cascade(cascade)] + ([load_cascade(fallback)] if fallback else [])
        self.scale_factor, self.min_neighbors = scale_factor, min_neighbors
        self.min_size, self.max_side = min_size, max_side

    def __call__(self, gray):
        """Boxes (N, 4) as x, y, w, h in ``gray``'s pixels, largest first."""
        scale = min(1.0, self.max_side / max(gray.shape[:2]))
        small = cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1 else gray
        min_side = max(1, int(round(self.min_size * scale)))
        for cascade in self.cascades:
            boxes = cascade.detectMultiScale(small, self.scale_factor, self.min_neighbors,
                                             minSize=(min_side, min_side))
            if len(boxes):
                break
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4) / scale
        return boxes[np.argsort(-boxes[:, 2])]


def pad_box(box, margin, width, height):
    """The box grown by ``margin`` x its size on every side, clamped to the image."""
    x, y, w, h = box
    x0, y0 = max(0, int(round(x - margin * w))), max(0, int(round(y - margin * h)))
    x1, y1 = min(width, int(round(x + w + margin * w))), min(height, int(round(y + h + margin * h)))
    return x0, y0, max(0, x1 - x0), max(0, y1 - y0)


def roi_square(box, margin=DEFAULT_MARGIN, center_shift=HAAR_CENTER_SHIFT):
    """The square (x, y, side) the model sees for a detector box; it may leave the
    image, where crop_square fills zeros instead of wrapping around."""
    x, y, w, h = box
    side = w * (1 + 2 * margin)
    cx, cy = x + w / 2, y + h / 2 + center_shift * w
    return cx - side / 2, cy - side / 2, side


def match_box(boxes, keypoints):
    """Index of the detection whose centre is nearest the annotated face, or None if
    no box centre lies within half the keypoint box of it."""
    if len(boxes) == 0:
        return None
    lo, hi = keypoints.min(0), keypoints.max(0)
    centers = boxes[:, :2] + boxes[:, 2:] / 2
    dist = np.linalg.norm(centers - (lo + hi) / 2, axis=1)
    best = int(np.argmin(dist))
    return best if dist[best] <= (hi - lo).max() / 2 else None


def framing_of(boxes, keypoints, margin=DEFAULT_MARGIN):
    """(u, v, r): how the ROI square :func:`roi_square` cuts for the detection matching
    the annotated face frames it, relative to the keypoint box (centre offset in box
    sides, side over box side); None when no detection matches."""
    j = match_box(boxes, keypoints)
    if j is None:
        return None
    x, y, side = roi_square(boxes[j], margin)
    (cx, cy), box_side = keypoint_box(keypoints)
    return (x + side / 2 - cx) / box_side, (y + side / 2 - cy) / box_side, side / box_side


def measure_framings(dataset, detector, margin=DEFAULT_MARGIN):
    """Rows (u, v, r) of :func:`framing_of`, one per face of ``dataset`` the detector
    finds. data_load.FaceCrop replays them in training."""
    rows = [framing_of(detector(to_gray(dataset.image(i))), dataset.keypoints[i], margin)
            for i in range(len(dataset))]
    return np.array([r for r in rows if r is not None], np.float64).reshape(-1, 3)


def to_gray(image):
    """An RGB or gray uint8 array -> (H, W) uint8 gray (ITU-R 601 weights, as in training)."""
    return image if image.ndim == 2 else cv2.cvtColor(np.ascontiguousarray(image[..., :3]), cv2.COLOR_RGB2GRAY)


def predict_squares(gray, squares, keypointer):
    """Keypoints (N, 68, 2) in image pixels for square crops of ``gray``, one batch."""
    size = keypointer.input_size
    crops = np.stack([crop_square_array(gray, sq, size) for sq in squares])[:, None].astype(np.float32) / 255
    return np.stack([uncrop_points(kp, sq, size) for kp, sq in zip(keypointer(crops), squares)])


def keypoints_for_squares(gray, squares, keypointer, refine=DEFAULT_REFINE):
    """Keypoints (N, 68, 2) in image pixels for square ROIs; each refine pass re-frames
    the face on its predicted keypoints (the exact training framing) and predicts again."""
    if len(squares) == 0:
        return np.zeros((0, 68, 2), np.float32)
    keypoints = predict_squares(gray, squares, keypointer)
    for _ in range(refine):
        squares = [face_square(kp, keypointer.framing_scale) for kp in keypoints]
        keypoints = predict_squares(gray, squares, keypointer)
    return keypoints


def keypoints_for_boxes(gray, boxes, keypointer, margin=DEFAULT_MARGIN, refine=DEFAULT_REFINE):
    """Keypoints (N, 68, 2) in image pixels for detector boxes (N, 4) of ``gray``."""
    return keypoints_for_squares(gray, [roi_square(b, margin) for b in boxes], keypointer, refine)


def detect_keypoints(image, detector, keypointer, margin=DEFAULT_MARGIN, refine=DEFAULT_REFINE):
    """Faces in ``image``: a list of {'box': [x, y, w, h], 'keypoints': (68, 2) array}."""
    gray = to_gray(image)
    boxes = detector(gray)
    keypoints = keypoints_for_boxes(gray, boxes, keypointer, margin, refine)
    return [{"box": [int(round(v)) for v in b], "keypoints": kp} for b, kp in zip(boxes, keypoints)]


def draw_faces(image, faces, thickness=None):
    """A copy of the RGB image with boxes, facial-part lines and keypoints drawn."""
    canvas = np.ascontiguousarray(cv2.cvtColor(image, cv2.COLOR_GRAY2RGB) if image.ndim == 2 else image[..., :3]).copy()
    t = thickness or max(1, round(max(canvas.shape[:2]) / 400))
    for face in faces:
        x, y, w, h = face["box"]
        cv2.rectangle(canvas, (x, y), (x + w, y + h), (255, 200, 0), t)
        kp = np.round(face["keypoints"]).astype(np.int32)
        for indices, closed in FACE_PARTS.values():
            cv2.polylines(canvas, [kp[list(indices)]], closed, (0, 255, 0), t, cv2.LINE_AA)
        for px, py in kp:
            cv2.circle(canvas, (int(px), int(py)), t + 1, (255, 0, 255), -1, cv2.LINE_AA)
    return canvas


def face_record(name, image, faces):
    """The JSON record of one image or frame."""
    return {"image": name, "width": int(image.shape[1]), "height": int(image.shape[0]),
            "faces": [{"box": f["box"], "keypoints": np.round(f["keypoints"].astype(np.float64), 2).tolist()} for f in faces]}


def write_atomic(path, write):
    """Call write(tmp_path) then rename, so an existing output is never half-written."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    root, ext = os.path.splitext(path)
    tmp = f"{root}.tmp{os.getpid()}{ext}"
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def save_image(path, rgb):
    def write(tmp):
        if not cv2.imwrite(tmp, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)):
            raise DataError(f"{path}: cannot write image")
    write_atomic(path, write)


def save_json(path, records):
    def write(tmp):
        with open(tmp, "w") as f:
            json.dump(records, f)
    write_atomic(path, write)


def run_image(image, name, out_path, detect):
    faces = detect(image)
    save_image(out_path, draw_faces(image, faces))
    print(f"{name}: {len(faces)} face(s)" + ("" if faces else " — no face found") + f" -> {out_path}")
    return face_record(name, image, faces)


def run_video(path, out_path, detect):
    """Annotate every frame; returns one record per frame and prints frames per second."""
    from tqdm import tqdm
    capture = cv2.VideoCapture(path)
    if not capture.isOpened():
        raise DataError(f"{path}: not a readable video")
    fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
    total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) or None
    records = []

    def write(tmp):
        writer = None
        try:
            for index in tqdm(range(total) if total else iter(int, 1), desc="frames", unit="frame"):
                ok, frame = capture.read()
                if not ok:
                    break
                rgb = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
                faces = detect(rgb)
                if writer is None:
                    writer = cv2.VideoWriter(tmp, cv2.VideoWriter_fourcc(*"mp4v"), fps, rgb.shape[1::-1])
                writer.write(cv2.cvtColor(draw_faces(rgb, faces), cv2.COLOR_RGB2BGR))
                records.append(face_record(f"{os.path.basename(path)}#{index}", rgb, faces))
        finally:
            if writer is not None:
                writer.release()
        if not records:
            raise DataError(f"{path}: no frame could be read")
    start = time.perf_counter()
    try:
        write_atomic(out_path, write)
    finally:
        capture.release()
    seconds = time.perf_counter() - start
    print(f"{path}: {len(records)} frames, {sum(len(r['faces']) for r in records)} faces, "
          f"{len(records) / seconds:.1f} frames/s -> {out_path}")
    return records


def sample_image():
    """The built-in sample: scikit-image's astronaut (512 x 512 RGB, one face)."""
    from skimage import data
    return data.astronaut()


def output_path(args, stem, ext):
    return args.out or os.path.join(OUTPUT_DIR, f"{stem}_keypoints{ext}")


def run(args):
    """Dispatch on the input kind; returns the exit status."""
    fallback = None if args.fallback_cascade.lower() == "none" else args.fallback_cascade
    detector = FaceDetector(args.cascade, args.scale_factor, args.min_neighbors, args.min_size, fallback=fallback)
    keypointer = Keypointer(args.checkpoint, args.backend, flip=args.flip)

    def detect(image):
        return detect_keypoints(image, detector, keypointer, args.margin, args.refine)
    failures, records, single = [], [], False
    if args.input is None:
        records, single = [run_image(sample_image(), "astronaut", output_path(args, "astronaut", ".png"), detect)], True
    elif os.path.isdir(args.input):
        folder_out = args.out or os.path.join(OUTPUT_DIR, os.path.basename(os.path.normpath(args.input)))
        for name in sorted(f for f in os.listdir(args.input) if not f.startswith(".")):
            try:
                out = os.path.join(folder_out, os.path.splitext(name)[0] + "_keypoints.png")
                records.append(run_image(load_image(os.path.join(args.input, name)), name, out, detect))
            except DataError as e:
                failures.append(str(e))
    elif not os.path.exists(args.input):
        raise DataError(f"{args.input}: no such file or directory")
    else:
        name = os.path.basename(args.input)
        stem, ext = os.path.splitext(name)
        if ext.lower() in VIDEO_EXTENSIONS:
            records = run_video(args.input, output_path(args, stem, ".mp4"), detect)
        else:
            records, single = [run_image(load_image(args.input), name, output_path(args, stem, ".png"), detect)], True
    if args.json:
        save_json(args.json, records[0] if single else records)
        print(f"keypoints -> {args.json}")
    if failures:
        print(f"{len(failures)} file(s) failed:\n  " + "\n  ".join(failures), file=sys.stderr)
        return 1
    return 0


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("input", nargs="?", help="image, folder or video (default: built-in sample)")
    p.add_argument("-o", "--out", help="output image/video path (a folder for a folder input)")
    p.add_argument("--json", help="also write the faces and keypoints as JSON here")
    p.add_argument("--checkpoint", default=DEFAULT_CHECKPOINT,
                   help="the landmark model (default: the in-the-wild model, 300-W markup, %(default)s; "
                        "saved_models/keypointnet.pt is the course's Udacity-markup model)")
    p.add_argument("--backend", choices=("onnx", "torch"), default="onnx", help="(default: onnx)")
    p.add_argument("--flip", action="store_true",
                   help="also predict on the mirrored face and average (slower, slightly more accurate)")
    p.add_argument("--cascade", default=DEFAULT_CASCADE,
                   help="Haar cascade: a path, or a name in detector_architectures/ or OpenCV's data")
    p.add_argument("--fallback-cascade", default=FALLBACK_CASCADE,
                   help="cascade tried where the first finds no face; 'none' to skip (default: %(default)s)")
    p.add_argument("--margin", type=float, default=DEFAULT_MARGIN,
                   help="ROI padding per side, fraction of the box width (default: %(default)s)")
    p.add_argument("--scale-factor", type=float, default=1.1, help="Haar image-pyramid step (default: 1.1)")
    p.add_argument("--min-neighbors", type=int, default=5, help="Haar detections to confirm a face (default: 5)")
    p.add_argument("--min-size", type=int, default=30, help="smallest face side, pixels (default: 30)")
    p.add_argument("--refine", type=int, default=DEFAULT_REFINE,
                   help="re-frame on the predicted keypoints and predict again, N times (default: %(default)s)")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    try:
        sys.exit(run(args))
    except (DataError, CheckpointError) as e:
        sys.exit(f"error: {e}")
    except OSError as e:
        sys.exit(f"error: {e.filename or ''}: {e.strerror}")


if __name__ == "__main__":
    main()
