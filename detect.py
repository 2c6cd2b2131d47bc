"""Find every face in an image, place its 68 keypoints, and map them onto the original.

    python detect.py                      # built-in sample (skimage astronaut)
    python detect.py photo.jpg --json faces.json
    python detect.py folder/ -o outputs/annotated
    python detect.py clip.mp4             # annotated video, frames per second reported
    python detect.py photo.jpg --overlay sunglasses --pose
    python detect.py --camera 0 --overlay sunglasses   # webcam: a window where there is a display

The default model is the in-the-wild one (saved_models/keypointnet_wild.pt, 300-W markup);
``--checkpoint saved_models/keypointnet.pt`` is the course's Udacity-markup model.

Pipeline (one short function, pipeline.detect_keypoints): Haar cascade (a second one
where the first finds nothing; on a reduced copy, the profile cascade and the frontal one
on turned copies wherever no upright face was found: --search) -> box padded by a margin,
turned as the search found it -> square crop, the framing the
model was trained on -> CNN (all faces as one batch) -> keypoints mapped back into
original-image pixels; a face rolled past --align degrees, or framed 1.2x too large or
small (pipeline.REFRAME_SCALE), is cut again on its keypoints, upright, and detections the
model scores as no face (--min-score) are dropped. Videos and cameras track each face from
its last keypoints (tracking.py) and decode and write in threads (video.py).

Images are read as a photo viewer shows them (EXIF orientation applied): the JSON's
coordinates, width and height are those of the upright image. Every option is checked
while parsing, before the model loads; a mistake gives one line and exit status 2.
"""
import argparse
import json
import os
import sys
import time

import cv2
import numpy as np

import cli
import overlay
import pose
from atomic import write_atomic
from checkpoint import CheckpointError
from data_files import DataError, load_image
from face_detector import (DEFAULT_CASCADE, FALLBACK_CASCADE, MIN_FACE, ROTATED_SEARCH_DEGREES, SEARCHES,
                           FaceDetector, find_cascade)
from framing import DEFAULT_MARGIN
from keypointer import DEFAULT_CHECKPOINT, MIN_FACE_SCORE, Keypointer
from markup import FACE_PARTS
from pipeline import DEFAULT_REFINE, REFRAME_SCALE, ROLL_ALIGN_DEGREES, detect_keypoints
from tracking import REDETECT_EVERY, SMOOTH_BETA, SMOOTH_MIN_CUTOFF, SMOOTH_SHAPE_BETA, FaceTracker
from video import in_background, run_camera, run_video

STREAM_SEARCH = "upright"       # frames without a face run the detector every time: keep it cheap
STREAMS = ("video", "camera")   # inputs whose faces are tracked, and averaged with their mirror by default
VIDEO_EXTENSIONS = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v"}
OUTPUT_DIR = "outputs"
STDOUT = "-"                    # --json - writes the JSON to standard output


def log(*args):
    """Progress lines: on standard error, so that ``--json -`` leaves standard output to the JSON."""
    print(*args, file=sys.stderr)


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
    """The JSON record of one image or frame: each face's box, face score, keypoints and head pose."""
    height, width = image.shape[:2]
    return {"image": name, "width": int(width), "height": int(height),
            "faces": [{"box": f["box"], "score": None if f.get("score") is None else round(f["score"], 4),
                       "keypoints": np.round(f["keypoints"].astype(np.float64), 2).tolist(),
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


def run_image(image, name, out_path, detect, draw=draw_faces, save=save_image):
    faces = detect(image)
    save(out_path, draw(image, faces))
    log(f"{name}: {len(faces)} face(s)" + ("" if faces else " — no face found") + f" -> {out_path}")
    return face_record(name, image, faces)


def folder_images(folder, recursive=False):
    """(relative paths of the files to read, sub-folders left out): hidden entries are skipped,
    sub-folders are walked with ``recursive``."""
    files, skipped = [], []
    for root, dirs, names in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        if not recursive:
            skipped, dirs[:] = list(dirs), []
        rel = os.path.relpath(root, folder)
        files += [os.path.normpath(os.path.join(rel, n)) for n in sorted(names) if not n.startswith(".")]
    return files, skipped


def output_names(files):
    """{relative input path: relative output path}, one output per input: ``a.jpg`` gives
    ``a_keypoints.png``, or ``a_jpg_keypoints.png`` where ``a.png`` is in the same folder."""
    stems = {}
    for f in files:
        stems.setdefault(os.path.splitext(f)[0].lower(), []).append(f)
    names = {}
    for f in files:
        stem, ext = os.path.splitext(f)
        shared = len(stems[stem.lower()]) > 1
        names[f] = stem + (f"_{ext[1:].lower()}" if shared and ext else "") + "_keypoints.png"
    return names


def run_folder(folder, out_folder, detect, draw=draw_faces, recursive=False):
    """Every image of a folder: decoded ahead and written behind by threads, so both cores work.
    Returns (records, one line per file that failed)."""
    from concurrent.futures import ThreadPoolExecutor

    def load(name):
        try:
            return name, load_image(os.path.join(folder, name))
        except DataError as e:
            return name, e
    files, skipped = folder_images(folder, recursive)
    if skipped:
        log(f"{folder}: {len(skipped)} sub-folder(s) skipped ({', '.join(skipped[:3])}"
            f"{', ...' if len(skipped) > 3 else ''}); --recursive reads them")
    outputs = output_names(files)
    records, failures, start = [], [], time.perf_counter()
    with ThreadPoolExecutor(1) as saver:
        writes = []

        def save(path, rgb):
            writes.append(saver.submit(save_image, path, rgb))
        for name, image in in_background(load(n) for n in files):
            if isinstance(image, DataError):
                failures.append(str(image))
                continue
            records.append(run_image(image, name, os.path.join(out_folder, outputs[name]), detect, draw, save))
        for write in writes:
            try:
                write.result()
            except DataError as e:
                failures.append(str(e))
    log(f"{folder}: {len(records)} images, {len(records) / (time.perf_counter() - start):.1f} images/s end to end")
    return records, failures


def sample_image():
    """The built-in sample: scikit-image's astronaut (512 x 512 RGB, one face)."""
    from skimage import data
    return data.astronaut()


def input_kind(args):
    """'camera', 'sample', 'folder', 'video' or 'image'; a missing input is a usage error."""
    if args.camera is not None:
        return "camera"
    if args.input is None:
        return "sample"
    if os.path.isdir(args.input):
        return "folder"
    if not os.path.exists(args.input):
        cli.usage_error(f"{args.input}: no such file or directory")
    return "video" if os.path.splitext(args.input)[1].lower() in VIDEO_EXTENSIONS else "image"


def output_path(args, kind):
    """Where the annotated output goes, checked against the input's kind (exit 2 if it cannot)."""
    stem = "astronaut" if kind == "sample" else (f"camera{args.camera}" if kind == "camera" else
                                                 os.path.splitext(os.path.basename(os.path.normpath(args.input)))[0])
    if kind == "folder":
        if args.out and os.path.isfile(args.out):
            cli.usage_error(f"-o {args.out}: an existing file; a folder input writes into a folder")
        return args.out or os.path.join(OUTPUT_DIR, os.path.basename(os.path.normpath(args.input)))
    video = kind in ("video", "camera")
    if not args.out:
        return os.path.join(OUTPUT_DIR, f"{stem}_keypoints{'.mp4' if video else '.png'}")
    cli.check_output(args.out, cli.VIDEO_OUTPUTS if video else cli.IMAGE_OUTPUTS, "a video" if video else "an image")
    return args.out


def run(args):
    """Dispatch on the input kind; returns the exit status. The input is read (and refused if
    it is not an image) before the model loads."""
    kind = input_kind(args)
    out = output_path(args, kind)
    image = load_image(args.input) if kind == "image" else sample_image() if kind == "sample" else None
    fallback = None if args.fallback_cascade.lower() == "none" else args.fallback_cascade

    def face_detector(search):
        return FaceDetector.searching(search, args.rotate, cascade=args.cascade, scale_factor=args.scale_factor,
                                      min_neighbors=args.min_neighbors, min_face=args.min_face,
                                      upsample=args.upsample, fallback=fallback, right_angles=args.rotations)
    detector = face_detector(args.search or "uncovered")
    flip = kind in STREAMS if args.flip is None else args.flip
    keypointer = Keypointer(args.checkpoint, args.backend, flip=flip, second_stage=args.second_stage)
    align = args.align or None

    def detect(image):
        return detect_keypoints(image, detector, keypointer, args.margin, args.refine, args.min_score, align)

    def draw(image, faces):
        if args.overlay:
            return overlay.apply(image, faces, args.overlay)
        return draw_faces(image, faces, axes=args.pose)

    def stream():
        """A frame's faces for a video or camera: tracked, or detected anew with --no-track."""
        if args.no_track:
            return lambda image, seconds: detect(image)
        # Frames without a face run the detector every time: streams search upright unless told otherwise.
        searcher = face_detector(args.search or STREAM_SEARCH)
        return FaceTracker(searcher, keypointer, args.margin, args.min_score, args.redetect_every, args.smooth, align)
    failures, records = [], []
    if kind == "camera":
        run_camera(args.camera, out, stream(), draw)
        return 0
    if kind == "folder":
        records, failures = run_folder(args.input, out, detect, draw, args.recursive)
    elif kind == "video":
        records = run_video(args.input, out, stream(), draw, face_record)
    else:
        name = "astronaut" if kind == "sample" else os.path.basename(args.input)
        records = run_image(image, name, out, detect, draw)
    if args.json == STDOUT:
        json.dump(records, sys.stdout)
        sys.stdout.write("\n")
    elif args.json:
        save_json(args.json, records)
        log(f"keypoints -> {args.json}")
    if failures:
        log(f"{len(failures)} file(s) failed:\n  " + "\n  ".join(failures))
        return 1
    return 0


def smooth_option(text):
    """'CUTOFF,BETA[,SHAPE_BETA]' -> (cutoff, beta, shape_beta); 'off' -> None."""
    if text == "off":
        return None
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        values = []
    if len(values) not in (2, 3):
        raise argparse.ArgumentTypeError(f"{text!r}: give CUTOFF,BETA[,SHAPE_BETA] (two or three numbers) or off")
    cutoff, beta, shape_beta = values + [SMOOTH_SHAPE_BETA] * (3 - len(values))
    if cutoff <= 0 or beta < 0 or shape_beta < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: the cut-off must be > 0 and the betas >= 0")
    return cutoff, beta, shape_beta


def add_second_stage_options(p):
    """--second-stage / --no-second-stage into ``second_stage``: True, False, or 'auto' (default)."""
    group = p.add_mutually_exclusive_group()
    group.add_argument("--second-stage", dest="second_stage", action="store_const", const=True, default="auto",
                       help="require the checkpoint's second stage (train_refiner.py; an error if it has none). "
                            "By default it runs wherever the checkpoint has one: the in-the-wild model's "
                            "(what it gains and costs: saved_models/README.md)")
    group.add_argument("--no-second-stage", dest="second_stage", action="store_const", const=False,
                       help="skip the checkpoint's second stage: the network's points as they are (in-the-wild "
                            "model, LFPW test: NME 0.0342 -> 0.0352, failures 0.45 %% both; about 0.5 ms less per "
                            "face: 1.19x dlib's time in make benchmark's loop, against 1.29-1.54x with it)")


def cascade_option(text):
    """A Haar cascade that exists (a path, or a name in detector_architectures/ or OpenCV's data)."""
    try:
        find_cascade(text)
    except DataError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return text


def right_angles(text):
    """Right angles to search besides the image as given: '90,180,270' (any of them)."""
    angles = []
    for part in text.split(","):
        if part.strip() not in ("90", "180", "270"):
            raise argparse.ArgumentTypeError(f"{text!r}: give right angles from 90, 180 and 270, comma-separated")
        angles.append(int(part))
    return tuple(dict.fromkeys(angles))


def make_parser():
    number, p = cli.number, cli.Parser(description=__doc__.splitlines()[0])
    p.add_argument("input", nargs="?", help="image, folder or video (default: built-in sample)")
    p.add_argument("-o", "--out", help="output image (.png, .jpg, ...) or video (.mp4, ...) path; a folder for a "
                                       "folder input (default: under outputs/)")
    p.add_argument("--recursive", action="store_true", help="a folder input: also the images in its sub-folders "
                                                            "(mirrored under -o); otherwise they are skipped with a note")
    p.add_argument("--camera", type=number(int, 0), metavar="INDEX",
                   help="annotate a camera's stream (0: the first camera): in a window with the frame rate "
                        "where a display and a GUI build of OpenCV exist (README: requirements-gui.txt), q quits; "
                        "otherwise into -o (default outputs/cameraN_keypoints.mp4), said in one line, Ctrl-C stops")
    p.add_argument("--json", type=lambda t: t if t == STDOUT else cli.output_file((".json",))(t),
                   help="also write the faces and keypoints as JSON to this .json file, or to standard output: -")
    p.add_argument("--checkpoint", type=cli.existing_file, default=DEFAULT_CHECKPOINT,
                   help="the landmark model (default: the in-the-wild model, 300-W markup, %(default)s; "
                        "saved_models/keypointnet.pt is the course's Udacity-markup model)")
    p.add_argument("--backend", choices=("onnx", "torch"), default="onnx", help="(default: onnx)")
    p.add_argument("--flip", action=argparse.BooleanOptionalAction,
                   help="also predict on each mirrored face and average: on by default for videos and cameras "
                        "(tracked jitter and error both fall, at about 1.7x the landmark time), off for photos "
                        "(LFPW test NME 0.0342 -> 0.0336, but 2.35x dlib's time per face; saved_models/README.md)")
    add_second_stage_options(p)
    p.add_argument("--cascade", type=cascade_option, default=DEFAULT_CASCADE,
                   help="Haar cascade: a path, or a name in detector_architectures/ or OpenCV's data")
    p.add_argument("--fallback-cascade", type=lambda t: t if t.lower() == "none" else cascade_option(t),
                   default=FALLBACK_CASCADE,
                   help="cascade tried where the first finds no face; 'none' to skip (default: %(default)s)")
    p.add_argument("--search", choices=SEARCHES,
                   help="where the profile cascade (both ways) and the frontal search on copies turned by "
                        "±--rotate run besides the upright frontal search: 'uncovered' (images' default), on "
                        "every image at half the search's size, wherever no upright face was found; 'if-none', at "
                        "full size on images where the upright search finds no face; 'always', at full size on "
                        "every image; 'upright' (videos' and cameras' default): never. Costs: README, Detection")
    p.add_argument("--rotate", type=number(float, 0, 90), default=ROTATED_SEARCH_DEGREES, metavar="DEG",
                   help="the turned search's angle, 0 to 90; 0: none (default: %(default)s)")
    p.add_argument("--rotations", type=right_angles, default=(), metavar="90,180,270",
                   help="also search copies of the image turned by these right angles (a photo stored sideways "
                        "or upside down); keypoints are on the image as given (default: none)")
    p.add_argument("--margin", type=number(float, 0, 2), default=DEFAULT_MARGIN,
                   help="ROI padding per side, fraction of the box width, 0 to 2 (default: %(default)s)")
    p.add_argument("--scale-factor", type=number(float, high=3, above=1), default=1.1,
                   help="Haar image-pyramid step, above 1 and at most 3 (default: 1.1)")
    p.add_argument("--min-neighbors", type=number(int, 0, 100), default=5,
                   help="Haar detections to confirm a face, 0 to 100 (default: 5)")
    p.add_argument("--min-face", type=number(float, high=1, above=0), default=MIN_FACE, metavar="FRACTION",
                   help="smallest face sought, as a share of the image's shorter side, above 0 and at most 1; "
                        "never below the cascade's 24 px window unless --upsample (default: %(default)s)")
    p.add_argument("--upsample", type=number(int, 0, 3), default=0, metavar="N",
                   help="look for faces down to 24 / 2**N px by enlarging the image up to 2**N times, 0 to 3, "
                        "as dlib's upsample (default: %(default)s)")
    p.add_argument("--overlay", choices=sorted(overlay.OVERLAYS),
                   help="draw this on every face instead of its keypoints, placed by them (overlay.py)")
    p.add_argument("--pose", action="store_true",
                   help="draw each head's pose axes (yaw, pitch and roll are always in the JSON; pose.py)")
    p.add_argument("--min-score", type=cli.fraction, default=MIN_FACE_SCORE,
                   help="drop detections whose face score (the landmark model's, 0 to 1) is below this; "
                        "0 keeps all (default: %(default)s)")
    p.add_argument("--align", type=number(float, 0, 180), default=ROLL_ALIGN_DEGREES, metavar="DEG",
                   help="cut a face rolled past DEG degrees (0 to 180) again, turned upright (as one framed "
                        f"{REFRAME_SCALE}x too large or small); 0: no second cuts (default: %(default)s)")
    p.add_argument("--no-track", action="store_true",
                   help="video and camera: detect every frame instead of tracking each face from the last")
    p.add_argument("--redetect-every", type=number(int, 1), default=REDETECT_EVERY, metavar="N",
                   help="tracking: also run the detector every N frames (N >= 1), for new faces (default: %(default)s)")
    p.add_argument("--smooth", type=smooth_option, default=(SMOOTH_MIN_CUTOFF, SMOOTH_BETA, SMOOTH_SHAPE_BETA),
                   metavar="CUTOFF,BETA[,SHAPE_BETA]",
                   help="tracking: One Euro filters on each face's pose and, apart, on each part of its shape: "
                        "the cut-off at rest (Hz) and the speed coefficients (per face size per second) of the "
                        f"pose and of the shape ({SMOOTH_SHAPE_BETA:g} when left out); 'off': raw keypoints "
                        f"(default: {SMOOTH_MIN_CUTOFF:g},{SMOOTH_BETA:g},{SMOOTH_SHAPE_BETA:g})")
    p.add_argument("--refine", type=number(int, 0, 10), default=DEFAULT_REFINE,
                   help="re-frame on the predicted keypoints and predict again, N times, 0 to 10 (default: %(default)s)")
    return p


def parse_args(argv=None):
    p = make_parser()
    args = p.parse_args(argv)
    if args.camera is not None and args.input is not None:
        p.error("give an input file or --camera, not both")
    if args.recursive and args.input is not None and not os.path.isdir(args.input):
        p.error("--recursive reads a folder input")
    return args


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
