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
    (``fallback=None``: none); images larger than ``max_side`` are downscaled to detect.

    Optional searches beyond the upright frontal face, merged by non-maximum suppression:
    ``profile`` runs the profile cascade on the image and on its mirror; ``rotations``
    (degrees) runs the frontal search on rotated copies and maps the boxes back. With
    ``only_when_empty`` they run only on an image where the upright search finds nothing
    (pipeline.detect_keypoints also runs them where its boxes all score as no face)."""

    def __init__(self, cascade=DEFAULT_CASCADE, scale_factor=1.1, min_neighbors=5, min_size=30,
                 max_side=1280, fallback=FALLBACK_CASCADE, profile=False, rotations=(), only_when_empty=False):
        self.cascades = [load_cascade(cascade)] + ([load_cascade(fallback)] if fallback else [])
        self.profile = load_cascade(PROFILE_CASCADE) if profile else None
        self.rotations, self.only_when_empty = tuple(rotations), only_when_empty
        self.scale_factor, self.min_neighbors = scale_factor, min_neighbors
        self.min_size, self.max_side = min_size, max_side

    def _frontal(self, gray, min_side):
        for cascade in self.cascades:
            boxes = cascade.detectMultiScale(gray, self.scale_factor, self.min_neighbors, minSize=(min_side, min_side))
            if len(boxes):
                return np.asarray(boxes, np.float64).reshape(-1, 4)
        return np.zeros((0, 4))

    def _profiles(self, gray, min_side):
        found = []
        for mirrored in (False, True):
            image = gray[:, ::-1] if mirrored else gray
            boxes = np.asarray(self.profile.detectMultiScale(np.ascontiguousarray(image), self.scale_factor,
                                                             self.min_neighbors, minSize=(min_side, min_side)),
                               np.float64).reshape(-1, 4)
            if mirrored:
                boxes[:, 0] = gray.shape[1] - boxes[:, 0] - boxes[:, 2]
            found.append(boxes)
        return np.concatenate(found)

    def _rotated(self, gray, angle, min_side):
        """Frontal boxes found on ``gray`` rotated by ``angle`` degrees (counter-clockwise, whole
        image kept), as upright boxes of the same size around their centres mapped back."""
        h, w = gray.shape
        turn = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
        cos, sin = abs(turn[0, 0]), abs(turn[0, 1])
        size = (int(np.ceil(w * cos + h * sin)), int(np.ceil(w * sin + h * cos)))
        turn[:, 2] += (size[0] - w) / 2, (size[1] - h) / 2
        boxes = self._frontal(cv2.warpAffine(gray, turn, size), min_side)
        centres = boxes[:, :2] + boxes[:, 2:] / 2
        back = cv2.invertAffineTransform(turn)
        centres = centres @ back[:, :2].T + back[:, 2]
        return np.column_stack([centres - boxes[:, 2:] / 2, boxes[:, 2:]])

    def __call__(self, gray, wider_only=False):
        """Boxes (N, 4) as x, y, w, h in ``gray``'s pixels, largest first. ``wider_only``: the
        profile and turned searches alone (for an image whose upright boxes held no face)."""
        scale = min(1.0, self.max_side / max(gray.shape[:2]))
        small = cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1 else gray
        min_side = max(1, int(round(self.min_size * scale)))
        found = [] if wider_only else [self._frontal(small, min_side)]   # in order of trust: NMS keeps the earlier box
        if wider_only or not (self.only_when_empty and len(found[0])):
            found += [self._rotated(small, angle, min_side) for angle in self.rotations]
            if self.profile is not None:
                found.append(self._profiles(small, min_side))
        if not found:
            return np.zeros((0, 4))
        boxes = np.concatenate(found) / scale
        if len(found) > 1:      # the upright search's boxes all stay, as without the options
            boxes = boxes[non_max_suppression(boxes, always=0 if wider_only else len(found[0]))]
        return boxes[np.argsort(-boxes[:, 2])]

    @property
    def searches_wider(self):
        return bool(self.rotations) or self.profile is not None


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
