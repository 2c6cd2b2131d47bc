"""Find faces: OpenCV's Haar cascades (the course's detector), boxes as x, y, w, h."""
import os

import cv2
import numpy as np

from data_files import DataError

CASCADE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "detector_architectures")
DEFAULT_CASCADE = "haarcascade_frontalface_default.xml"
# Tried only on an image where the main cascade finds nothing: it finds the small,
# tightly framed faces the default cascade misses (all 7 of its misses on the test split).
FALLBACK_CASCADE = "haarcascade_frontalface_alt2.xml"
# OpenCV's profile cascade finds faces turned to the image's right; the mirrored image gives the others.
PROFILE_CASCADE = "haarcascade_profileface.xml"
NMS_IOU = 0.3       # detections overlapping more than this (intersection over union) are one face
# The smallest face sought, as a share of the image's shorter side: 30 px on a 640x480 frame
# (the smallest face of the fixed-size search before it), 190 px on a 4000x3000 photo. The
# search then costs about the same on any image size.
MIN_FACE = 0.0625
# Searches for faces that are not upright and frontal (docs/experiments.md, "detection"):
# 'uncovered' runs the profile cascade (both ways) and the frontal cascade on copies turned by
# +-ROTATED_SEARCH_DEGREES on every image, on a copy WIDER_SCALE times the search's size with
# a pyramid step of WIDER_SCALE_FACTOR (so turned faces under 2.5 times the smallest size are
# missed), to cost at most the upright search's time again; 'if-none' runs them at full size
# only where the upright search finds no face; 'always' at full size on every image.
SEARCHES = ("uncovered", "if-none", "always", "upright")
ROTATED_SEARCH_DEGREES = 25.0
WIDER_SCALE, WIDER_SCALE_FACTOR = 0.4, 1.15


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
    (``fallback=None``: none).

    Scale: the image is searched on a copy scaled so that the smallest face sought,
    ``min_face`` times the image's shorter side, fills the cascade's window (24 px): large
    images are searched small, so the cost hardly depends on their size. Faces smaller than
    the window are found only by upsampling, at most ``2 ** upsample`` times (dlib's meaning).

    Optional searches beyond the upright frontal face (the wider search), merged by
    non-maximum suppression that keeps every upright box: ``profile`` runs the profile cascade
    on the image and on its mirror; ``rotations`` (degrees) runs the frontal search on rotated
    copies and maps the boxes back. They run on a copy ``wider_scale`` times the search's
    size, over the whole image (so a found face never hides a turned one), or with
    ``only_when_empty`` only on an image where the upright search finds nothing
    (pipeline.detect_keypoints also runs them where its boxes all score as no face).
    ``right_angles`` (90, 180, 270) also searches upright on copies turned by those angles,
    for images stored sideways or upside down."""

    def __init__(self, cascade=DEFAULT_CASCADE, scale_factor=1.1, min_neighbors=5, min_face=MIN_FACE, upsample=0,
                 fallback=FALLBACK_CASCADE, profile=False, rotations=(), only_when_empty=False, wider_scale=1.0,
                 right_angles=()):
        self.cascades = [load_cascade(cascade)] + ([load_cascade(fallback)] if fallback else [])
        self.profile = load_cascade(PROFILE_CASCADE) if profile else None
        self.rotations, self.only_when_empty = tuple(rotations), only_when_empty
        self.right_angles = tuple(int(a) % 360 for a in right_angles if int(a) % 360)
        if any(a % 90 for a in self.right_angles):
            raise ValueError(f"right_angles must be multiples of 90, not {right_angles}")
        self.scale_factor, self.min_neighbors = scale_factor, min_neighbors
        self.min_face, self.upsample, self.wider_scale = min_face, upsample, wider_scale
        # the reduced wider search also steps its pyramid more coarsely (never more finely than asked)
        self._wider_step = max(scale_factor, WIDER_SCALE_FACTOR) if wider_scale < 1 else scale_factor
        width, height = self.cascades[0].getOriginalWindowSize()
        self.window = max(width, height)

    @classmethod
    def searching(cls, search, rotate=ROTATED_SEARCH_DEGREES, **kwargs):
        """A detector for one of SEARCHES: 'uncovered' (wider search over the whole image, on a
        WIDER_SCALE copy), 'if-none', 'always' (full size, on every image) or 'upright'."""
        if search not in SEARCHES:
            raise ValueError(f"search must be one of {', '.join(SEARCHES)}, not {search!r}")
        wider = search != "upright"
        return cls(profile=wider, rotations=(-rotate, rotate) if wider and rotate else (),
                   only_when_empty=search == "if-none", wider_scale=WIDER_SCALE if search == "uncovered" else 1.0,
                   **kwargs)

    def search_scale(self, shape):
        """The factor the image is resized by for the search (see the class docstring)."""
        smallest = max(self.min_face * min(shape[:2]), self.window / 2 ** self.upsample)
        return self.window / smallest

    def _frontal(self, gray, cascades=None, scale_factor=None):
        for cascade in cascades or self.cascades:
            boxes = cascade.detectMultiScale(gray, scale_factor or self.scale_factor, self.min_neighbors,
                                             minSize=(self.window, self.window))
            if len(boxes):
                return np.asarray(boxes, np.float64).reshape(-1, 4)
        return np.zeros((0, 4))

    def _profiles(self, gray):
        found = []
        for mirrored in (False, True):
            image = gray[:, ::-1] if mirrored else gray
            boxes = np.asarray(self.profile.detectMultiScale(np.ascontiguousarray(image), self._wider_step,
                                                             self.min_neighbors, minSize=(self.window, self.window)),
                               np.float64).reshape(-1, 4)
            if mirrored:
                boxes[:, 0] = gray.shape[1] - boxes[:, 0] - boxes[:, 2]
            found.append(boxes)
        return np.concatenate(found)

    def _rotated(self, gray, angle):
        """Frontal boxes found on ``gray`` rotated by ``angle`` degrees (counter-clockwise, whole
        image kept), as upright boxes of the same size around their centres mapped back."""
        h, w = gray.shape
        turn = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
        cos, sin = abs(turn[0, 0]), abs(turn[0, 1])
        size = (int(np.ceil(w * cos + h * sin)), int(np.ceil(w * sin + h * cos)))
        turn[:, 2] += (size[0] - w) / 2, (size[1] - h) / 2
        # the main cascade alone: the fallback's small, tight faces are upright ones
        boxes = self._frontal(cv2.warpAffine(gray, turn, size), self.cascades[:1], self._wider_step)
        return _boxes_back(boxes, cv2.invertAffineTransform(turn))

    def _right_angle(self, gray, angle):
        """Frontal boxes found on ``gray`` turned by ``angle`` (90, 180, 270) counter-clockwise."""
        turns = angle // 90
        h, w = gray.shape
        boxes = self._frontal(np.ascontiguousarray(np.rot90(gray, turns)))
        # np.rot90 turns the picture counter-clockwise: a point (x, y) of the turned copy is,
        # in continuous pixel coordinates, at back @ (x, y, 1) in the original
        back = {1: [[0, -1, w], [1, 0, 0]], 2: [[-1, 0, w], [0, -1, h]], 3: [[0, 1, 0], [-1, 0, h]]}[turns]
        return _boxes_back(boxes, np.array(back, np.float64))

    def _resized(self, gray, scale):
        if scale == 1:
            return gray
        return cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)

    def detect(self, gray, wider_only=False):
        """(boxes (N, 4) as x, y, w, h in ``gray``'s pixels, largest first; angles (N,): the
        degrees by which each face is turned clockwise, as the search that found it saw it).
        ``wider_only``: the wider search alone (for an image whose upright boxes held no face)."""
        scale = self.search_scale(gray.shape)
        small = self._resized(gray, scale)
        found = [] if wider_only else [(self._frontal(small), 0.0)]   # in order of trust: NMS keeps the earlier box
        found += [(self._right_angle(small, angle), float(angle)) for angle in self.right_angles]
        upright = sum(len(b) for b, _ in found)
        if self.searches_wider and (wider_only or not (self.only_when_empty and upright)):
            wider = min(1.0, self.wider_scale)
            copy = self._resized(small, wider)
            found += [(self._rotated(copy, angle) / wider, float(angle)) for angle in self.rotations]
            if self.profile is not None:
                found.append((self._profiles(copy) / wider, 0.0))
        if not found:
            return np.zeros((0, 4)), np.zeros(0)
        boxes = np.concatenate([b for b, _ in found]) / scale
        angles = np.concatenate([np.full(len(b), a) for b, a in found])
        if len(found) > 1:      # the upright search's boxes all stay, as without the options
            keep = non_max_suppression(boxes, always=upright)
            boxes, angles = boxes[keep], angles[keep]
        order = np.argsort(-boxes[:, 2], kind="stable")
        return boxes[order], angles[order]

    def __call__(self, gray, wider_only=False):
        """The boxes of :meth:`detect`, (N, 4)."""
        return self.detect(gray, wider_only)[0]

    @property
    def searches_wider(self):
        return bool(self.rotations) or self.profile is not None


def _boxes_back(boxes, back):
    """Boxes found on a turned copy, as upright boxes of the same size around their centres
    mapped back by the 2x3 affine ``back``."""
    centres = (boxes[:, :2] + boxes[:, 2:] / 2) @ back[:, :2].T + back[:, 2]
    return np.column_stack([centres - boxes[:, 2:] / 2, boxes[:, 2:]])


def non_max_suppression(boxes, iou=NMS_IOU, always=0):
    """Indices of the boxes kept, in order: each box is dropped if it overlaps a kept earlier
    one by more than ``iou`` (intersection over union); the first ``always`` boxes are kept."""
    keep = list(range(min(always, len(boxes))))
    for i, (x, y, w, h) in enumerate(boxes[len(keep):], len(keep)):
        for j in keep:
            kx, ky, kw, kh = boxes[j]
            inter = max(0.0, min(x + w, kx + kw) - max(x, kx)) * max(0.0, min(y + h, ky + kh) - max(y, ky))
            if inter / (w * h + kw * kh - inter) > iou:
                break
        else:
            keep.append(i)
    return np.array(keep, int)


def to_gray(image):
    """An RGB or gray uint8 array -> (H, W) uint8 gray (ITU-R 601 weights, as in training)."""
    return image if image.ndim == 2 else cv2.cvtColor(np.ascontiguousarray(image[..., :3]), cv2.COLOR_RGB2GRAY)
