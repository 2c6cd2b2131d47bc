"""Find every face in an image, place its 68 keypoints, and map them onto the original.

    python detect.py                      # built-in sample (skimage astronaut)
    python detect.py photo.jpg --json faces.json
    python detect.py folder/ -o outputs/annotated
    python detect.py clip.mp4             # annotated video, frames per second reported
    python detect.py photo.jpg --overlay sunglasses --pose
    python detect.py --camera 0 --overlay sunglasses   # webcam: a window where there is a display

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

import overlay
import pose
from checkpoint import CheckpointError
from atomic import write_atomic
from data_load import DataError, crop_square_array, face_square, load_image, uncrop_points
from face_detector import DEFAULT_CASCADE, FALLBACK_CASCADE, FaceDetector, to_gray  # noqa: F401
from framing import DEFAULT_MARGIN, roi_square
from keypointer import DEFAULT_CHECKPOINT, Keypointer

# Re-framing passes on the predicted keypoints. The model trains on the detector's own
# framings, so one pass is enough by default (model card: --refine 1 gains 0.0013 NME on
# Udacity's test split for twice the time).
DEFAULT_REFINE = 0
VIDEO_EXTENSIONS = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v"}
OUTPUT_DIR = "outputs"
FACE_PARTS = {"jaw": (range(0, 17), False), "right_brow": (range(17, 22), False),
              "left_brow": (range(22, 27), False), "nose_bridge": (range(27, 31), False),
              "nose_base": (range(31, 36), False), "right_eye": (range(36, 42), True),
              "left_eye": (range(42, 48), True), "outer_lips": (range(48, 60), True),
              "inner_lips": (range(60, 68), True)}


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


def draw_faces(image, faces, thickness=None, axes=False):
    """A copy of the RGB image with boxes, facial-part lines and keypoints drawn (and each
    head's pose axes with ``axes``)."""
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
        if axes:
            pose.draw_axes(canvas, face["keypoints"], t + 1)
    return canvas


def face_record(name, image, faces):
    """The JSON record of one image or frame: each face's box, keypoints and head pose."""
    height, width = image.shape[:2]
    return {"image": name, "width": int(width), "height": int(height),
            "faces": [{"box": f["box"], "keypoints": np.round(f["keypoints"].astype(np.float64), 2).tolist(),
                       "pose": pose.head_pose(f["keypoints"], width, height)} for f in faces]}


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


def run_image(image, name, out_path, detect, draw=draw_faces):
    faces = detect(image)
    save_image(out_path, draw(image, faces))
    print(f"{name}: {len(faces)} face(s)" + ("" if faces else " — no face found") + f" -> {out_path}")
    return face_record(name, image, faces)


def run_video(path, out_path, detect, draw=draw_faces):
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
                writer.write(cv2.cvtColor(draw(rgb, faces), cv2.COLOR_RGB2BGR))
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


def has_display():
    """Whether OpenCV can open a window here (a desktop session, an OpenCV build with a GUI)."""
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return False
    try:
        cv2.namedWindow("probe", cv2.WINDOW_NORMAL)
        cv2.destroyWindow("probe")
        return True
    except cv2.error:       # opencv-python-headless: no GUI
        return False


def run_camera(index, out_path, detect, draw, max_frames=None):
    """Annotate a camera's stream: in a window with the frame rate where a display exists
    (``q`` stops), into ``out_path`` otherwise; Ctrl-C stops either cleanly, the file complete."""
    level = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)    # our one line, not OpenCV's warnings
    try:
        capture = cv2.VideoCapture(index)
    finally:
        cv2.utils.logging.setLogLevel(level)
    if not capture.isOpened():
        raise DataError(f"camera {index}: cannot be opened")
    window, frames, start = has_display(), 0, time.perf_counter()

    def stream(tmp=None):
        nonlocal frames
        writer = None
        try:
            while max_frames is None or frames < max_frames:
                ok, frame = capture.read()
                if not ok:
                    break
                rgb = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
                shown = cv2.cvtColor(draw(rgb, detect(rgb)), cv2.COLOR_RGB2BGR)
                frames += 1
                fps = frames / (time.perf_counter() - start)
                if window:
                    cv2.putText(shown, f"{fps:.1f} fps", (10, 30), cv2.FONT_HERSHEY_SIMPLEX, 1, (0, 255, 255), 2)
                    cv2.imshow("facial keypoints (q quits)", shown)
                    if cv2.waitKey(1) & 0xFF == ord("q"):
                        break
                else:
                    if writer is None:
                        writer = cv2.VideoWriter(tmp, cv2.VideoWriter_fourcc(*"mp4v"), 30.0, shown.shape[1::-1])
                    writer.write(shown)
        except KeyboardInterrupt:
            pass                # stop at a frame boundary: what was written stays a complete file
        finally:
            if writer is not None:
                writer.release()
        if not window and frames == 0:
            raise DataError(f"camera {index}: no frame could be read")
    try:
        if window:
            stream()
        else:
            write_atomic(out_path, stream)
    finally:
        capture.release()
        if window:
            cv2.destroyAllWindows()
    print(f"camera {index}: {frames} frames, {frames / (time.perf_counter() - start):.1f} frames/s"
          + ("" if window else f" -> {out_path}"))
    return frames


def sample_image():
    """The built-in sample: scikit-image's astronaut (512 x 512 RGB, one face)."""
    from skimage import data
    return data.astronaut()


def output_path(args, stem, ext):
    return args.out or os.path.join(OUTPUT_DIR, f"{stem}_keypoints{ext}")


def run(args):
    """Dispatch on the input kind; returns the exit status."""
    fallback = None if args.fallback_cascade.lower() == "none" else args.fallback_cascade
    detector = FaceDetector(args.cascade, args.scale_factor, args.min_neighbors, args.min_size, fallback=fallback,
                            profile=args.profile, rotations=(-args.rotate, args.rotate) if args.rotate else ())
    keypointer = Keypointer(args.checkpoint, args.backend, flip=args.flip)

    def detect(image):
        return detect_keypoints(image, detector, keypointer, args.margin, args.refine)

    def draw(image, faces):
        if args.overlay:
            return overlay.apply(image, faces, args.overlay)
        return draw_faces(image, faces, axes=args.pose)
    failures, records, single = [], [], False
    if args.camera is not None:
        run_camera(args.camera, args.out or os.path.join(OUTPUT_DIR, f"camera{args.camera}_keypoints.mp4"), detect, draw)
        return 0
    if args.input is None:
        records, single = [run_image(sample_image(), "astronaut", output_path(args, "astronaut", ".png"), detect, draw)], True
    elif os.path.isdir(args.input):
        folder_out = args.out or os.path.join(OUTPUT_DIR, os.path.basename(os.path.normpath(args.input)))
        for name in sorted(f for f in os.listdir(args.input) if not f.startswith(".")):
            try:
                out = os.path.join(folder_out, os.path.splitext(name)[0] + "_keypoints.png")
                records.append(run_image(load_image(os.path.join(args.input, name)), name, out, detect, draw))
            except DataError as e:
                failures.append(str(e))
    elif not os.path.exists(args.input):
        raise DataError(f"{args.input}: no such file or directory")
    else:
        name = os.path.basename(args.input)
        stem, ext = os.path.splitext(name)
        if ext.lower() in VIDEO_EXTENSIONS:
            records = run_video(args.input, output_path(args, stem, ".mp4"), detect, draw)
        else:
            records, single = [run_image(load_image(args.input), name, output_path(args, stem, ".png"), detect, draw)], True
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
    p.add_argument("--camera", type=int, metavar="INDEX",
                   help="annotate a camera's stream (0: the first camera): in a window with the frame rate "
                        "where a display exists, q quits; otherwise into -o (default outputs/cameraN_keypoints.mp4), "
                        "Ctrl-C stops")
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
    p.add_argument("--profile", action="store_true",
                   help="also search with the profile cascade, both ways (finds turned faces; "
                        "5x the detection time, benchmarks/detection.py)")
    p.add_argument("--rotate", type=float, default=0, metavar="DEG",
                   help="also search copies rotated by -DEG and +DEG (finds tilted faces; 6x the detection "
                        "time, more false faces; 25 is a good value)")
    p.add_argument("--margin", type=float, default=DEFAULT_MARGIN,
                   help="ROI padding per side, fraction of the box width (default: %(default)s)")
    p.add_argument("--scale-factor", type=float, default=1.1, help="Haar image-pyramid step (default: 1.1)")
    p.add_argument("--min-neighbors", type=int, default=5, help="Haar detections to confirm a face (default: 5)")
    p.add_argument("--min-size", type=int, default=30, help="smallest face side, pixels (default: 30)")
    p.add_argument("--overlay", choices=sorted(overlay.OVERLAYS),
                   help="draw this on every face instead of its keypoints, placed by them (overlay.py)")
    p.add_argument("--pose", action="store_true",
                   help="draw each head's pose axes (yaw, pitch and roll are always in the JSON; pose.py)")
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
