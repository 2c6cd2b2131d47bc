"""68-point datasets beyond Udacity's CSV: 300-W's layout (image + ``.pts``) and dlib's XML.

Pixel convention of the whole project: a keypoint ``(x, y)`` is a continuous position in
which pixel ``i`` spans ``[i, i + 1)``, so the centre of the top-left pixel is (0.5, 0.5)
(torchvision's convention for resizing, cropping and rotating keypoints). Readers convert on
read, writers back on write:

* 300-W ``.pts``: 1-based, pixel centres at whole numbers  -> ``x - 0.5`` (:data:`PTS_OFFSET`)
* dlib (its XML and its predictor's output): 0-based centres -> ``x + 0.5`` (:data:`DLIB_OFFSET`)

Training does not decode 400 px photographs every epoch: :func:`build_face_cache` cuts each
face once into a small grayscale square (:data:`CACHE_SCALE` x its keypoint box, resized to
:data:`CACHE_SIZE`), records how the Haar detector framed it, and stores both in one ``.npz``
keyed by the files' names, sizes and times, so later runs load it in a second.
"""
import glob
import hashlib
import json
import os
import random
import re
import time
import xml.etree.ElementTree as ET

import numpy as np
import torch

from data_files import NUM_KEYPOINTS, DataError, load_image
from atomic import write_atomic

PTS_OFFSET = -0.5
DLIB_OFFSET = 0.5
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")
CACHE_SCALE = 2.6     # cached square side / keypoint box side: room for the widest framing and warp
CACHE_SIZE = 160      # cached square side in pixels: room to cut crops up to ~110 px at framing 1.8
CACHE_VERSION = 1
_ROOT = os.path.dirname(os.path.abspath(__file__))
DEFAULT_CACHE_DIR = os.path.join(_ROOT, "cache")
CACHE_DIR_ENV = "FKP_CACHE_DIR"
WILD_DIR_ENV = "FKP_300W_DIR"    # a copy of 300-W (afw/, helen/, lfpw/, ...): users bring their own
SHARED_300W = os.path.join(_ROOT, "..", "shared", "data", "300w")


def find_300w_dir():
    """The 300-W folder: $FKP_300W_DIR, else ../shared/data/300w; None where neither exists."""
    path = os.environ.get(WILD_DIR_ENV) or SHARED_300W
    return path if os.path.isdir(path) else None


class Face:
    """One annotated face: its image file, 68 keypoints (project convention) and a name."""
    __slots__ = ("image_path", "keypoints", "name")

    def __init__(self, image_path, keypoints, name):
        self.image_path, self.keypoints, self.name = image_path, keypoints, name

    def __repr__(self):
        return f"Face({self.name!r})"


# ----------------------------------------------------------------------------- .pts
def read_pts(path):
    """The (68, 2) float32 keypoints of a 300-W ``.pts`` file, converted to 0-based continuous."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror})") from None
    match = re.search(r"\{(.*)\}", text, re.S)
    if match is None:
        raise DataError(f"{path}: not a .pts file (no {{ ... }} block of points)")
    header = re.search(r"n_points\s*:\s*(\S+)", text[:match.start()])
    rows = [line.split() for line in match.group(1).splitlines() if line.strip()]
    if header and header.group(1) != str(NUM_KEYPOINTS):
        raise DataError(f"{path}: expected {NUM_KEYPOINTS} points, its header says {header.group(1)}")
    if len(rows) != NUM_KEYPOINTS:
        raise DataError(f"{path}: expected {NUM_KEYPOINTS} points, found {len(rows)}")
    try:
        points = np.array([[float(v) for v in row] for row in rows], np.float64)
    except ValueError:
        raise DataError(f"{path}: a point that is not two numbers") from None
    if points.shape != (NUM_KEYPOINTS, 2) or not np.isfinite(points).all():
        raise DataError(f"{path}: a point that is not two finite numbers")
    return (points + PTS_OFFSET).astype(np.float32)


def write_pts(path, keypoints):
    """Write (68, 2) project-convention keypoints as a 1-based 300-W ``.pts`` file."""
    lines = [f"{x - PTS_OFFSET:.3f} {y - PTS_OFFSET:.3f}" for x, y in np.asarray(keypoints, np.float64)]
    with open(path, "w") as f:
        f.write(f"version: 1\nn_points: {len(lines)}\n{{\n" + "\n".join(lines) + "\n}\n")


def _image_for(pts_path):
    """The image a ``.pts`` annotates: same stem, else the stem without a ``_N`` face suffix."""
    stem = os.path.splitext(pts_path)[0]
    candidates = [stem]
    match = re.fullmatch(r"(.*)_\d+", stem)
    if match:
        candidates.append(match.group(1))
    for base in candidates:
        for ext in IMAGE_EXTENSIONS:
            for path in (base + ext, base + ext.upper()):
                if os.path.isfile(path):
                    return path
    return None


def scan_300w(root):
    """Every face of a folder in 300-W's layout (searched recursively), sorted by name."""
    if not os.path.isdir(root):
        raise DataError(f"{root}: folder not found")
    faces, used = [], set()
    for pts in sorted(glob.glob(os.path.join(glob.escape(root), "**", "*.pts"), recursive=True)):
        image = _image_for(pts)
        if image is None:
            raise DataError(f"{pts}: no image of the same name beside it")
        used.add(os.path.abspath(image))
        faces.append(Face(image, read_pts(pts), os.path.relpath(os.path.splitext(pts)[0], root)))
    for path in sorted(glob.glob(os.path.join(glob.escape(root), "**", "*"), recursive=True)):
        if path.lower().endswith(IMAGE_EXTENSIONS) and os.path.abspath(path) not in used:
            raise DataError(f"{path}: image without a .pts file")
    if not faces:
        raise DataError(f"{root}: no .pts files (expected 300-W's layout: image + .pts of the same stem)")
    return faces


# ----------------------------------------------------------------------------- dlib XML
def read_dlib_xml(path):
    """Every face of a dlib/imglab XML file (e.g. ``labels_ibug_300W_train.xml``); image
    paths are relative to the file; boxes marked ``ignore`` are skipped."""
    try:
        root = ET.parse(path).getroot()
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror})") from None
    except ET.ParseError as e:
        raise DataError(f"{path}: not an XML file ({e})") from None
    base, faces = os.path.dirname(os.path.abspath(path)), []
    for image in root.iter("image"):
        file = image.get("file")
        if not file:
            raise DataError(f"{path}: an <image> without a file attribute")
        for k, box in enumerate(image.iter("box")):
            if box.get("ignore") in ("1", "true"):
                continue
            parts = box.findall("part")
            if len(parts) != NUM_KEYPOINTS:
                raise DataError(f"{path}: {file} box {k}: expected {NUM_KEYPOINTS} parts, found {len(parts)}")
            try:
                points = sorted((int(p.get("name")), float(p.get("x")), float(p.get("y"))) for p in parts)
            except (TypeError, ValueError):
                raise DataError(f"{path}: {file} box {k}: a part without a numeric name, x and y") from None
            if [p[0] for p in points] != list(range(NUM_KEYPOINTS)):
                raise DataError(f"{path}: {file} box {k}: parts must be named 0..67")
            keypoints = np.array([p[1:] for p in points], np.float32) + DLIB_OFFSET
            faces.append(Face(os.path.join(base, file), keypoints, f"{os.path.splitext(file)[0]}#{k}"))
    if not faces:
        raise DataError(f"{path}: no annotated faces")
    return faces


def read_faces(source):
    """The faces of a 300-W-layout folder or a dlib XML file."""
    if os.path.isfile(source) and source.lower().endswith(".xml"):
        return read_dlib_xml(source)
    if os.path.isdir(source):
        return scan_300w(source)
    raise DataError(f"{source}: not a folder in 300-W's layout nor a dlib .xml file")


def read_sources(sources):
    """The faces of several folders / XML files (a comma-separated string or a list)."""
    if isinstance(sources, str):
        sources = [s for s in sources.split(",") if s.strip()]
    return [face for source in sources for face in read_faces(source.strip())]


def split_by_image(faces, val_fraction, seed=0):
    """Index lists (train, val): a seeded ``val_fraction`` of the images held out, all
    faces of an image on the same side."""
    images = sorted({f.image_path for f in faces})
    random.Random(seed).shuffle(images)
    held = set(images[:max(1, round(val_fraction * len(images)))]) if val_fraction > 0 else set()
    return ([i for i, f in enumerate(faces) if f.image_path not in held],
            [i for i, f in enumerate(faces) if f.image_path in held])


class PhotoFaces(torch.utils.data.Dataset):
    """Faces of full photographs, items {'image': RGB uint8, 'keypoints', 'name'} as
    FacialKeypointsDataset's (evaluation: the detector sees the whole image)."""

    def __init__(self, faces, transform=None):
        self.faces, self.transform = list(faces), transform
        self.names = [f.name for f in self.faces]
        self.keypoints = np.stack([f.keypoints for f in self.faces]) if self.faces else np.zeros((0, 68, 2))

    def __len__(self):
        return len(self.faces)

    def image(self, idx):
        return load_image(self.faces[idx].image_path)

    def __getitem__(self, idx):
        image, keypoints = self.image(idx), self.keypoints[idx].copy()
        if self.transform is not None:
            image, keypoints = self.transform(image, keypoints)
        return {"image": image, "keypoints": keypoints, "name": self.names[idx]}


# ----------------------------------------------------------------------------- the face cache
def _cache_key(faces, measure, size):
    h = hashlib.sha1(json.dumps([CACHE_VERSION, CACHE_SCALE, size, measure is not None]).encode())
    for face in faces:
        st = os.stat(face.image_path)
        h.update(f"{os.path.abspath(face.image_path)}|{st.st_size}|{st.st_mtime_ns}|".encode())
        h.update(np.ascontiguousarray(face.keypoints, np.float32).tobytes())
    return h.hexdigest()[:16]


def build_face_cache(faces, measure=None, cache_dir=None, size=CACHE_SIZE):
    """(crops (N, S, S) uint8 gray, keypoints (N, 68, 2) in crop pixels, framings (N, 3)):
    each face cut once, ``size`` pixels square; ``measure(gray_image, keypoints) -> (u, v, r)
    or None`` records the detector's framing of it (NaN where it misses). Loaded from, or saved
    to, the cache."""
    import cv2
    from geometry import crop_square_array, crop_points, face_square
    cache_dir = cache_dir or os.environ.get(CACHE_DIR_ENV) or DEFAULT_CACHE_DIR
    path = os.path.join(cache_dir, f"faces_{_cache_key(faces, measure, size)}.npz")
    if os.path.isfile(path):
        with np.load(path) as cached:
            return cached["crops"], cached["keypoints"], cached["framings"]
    t0 = time.time()
    crops = np.zeros((len(faces), size, size), np.uint8)
    keypoints = np.zeros((len(faces), NUM_KEYPOINTS, 2), np.float32)
    framings = np.full((len(faces), 3), np.nan)
    for i, face in enumerate(faces):
        gray = cv2.cvtColor(load_image(face.image_path), cv2.COLOR_RGB2GRAY)
        square = face_square(face.keypoints, CACHE_SCALE)
        crops[i] = crop_square_array(gray, square, size)
        keypoints[i] = crop_points(face.keypoints, square, size)
        if measure is not None:
            framing = measure(gray, face.keypoints)
            if framing is not None:
                framings[i] = framing
    write_atomic(path, lambda tmp: np.savez(tmp, crops=crops, keypoints=keypoints, framings=framings))
    print(f"cached {len(faces)} faces in {time.time() - t0:.0f}s -> {path}", flush=True)
    return crops, keypoints, framings


class CachedFaces(torch.utils.data.Dataset):
    """Cached face squares (see :func:`build_face_cache`) as a dataset: items
    {'image', 'keypoints', 'name'}; ``image(i)`` and ``keypoints`` as FacialKeypointsDataset's.
    ``framings``: each face's own detector framing (u, v, r), NaN where the detector missed it."""

    def __init__(self, crops, keypoints, names, transform=None, framings=None):
        self.crops, self.keypoints, self.names, self.transform = crops, keypoints, list(names), transform
        self.framings = framings

    def __len__(self):
        return len(self.crops)

    def image(self, idx):
        return self.crops[idx]

    def __getitem__(self, idx):
        image, keypoints = self.crops[idx], self.keypoints[idx].copy()
        if self.transform is not None:
            image, keypoints = self.transform(image, keypoints)
        return {"image": image, "keypoints": keypoints, "name": self.names[idx]}
