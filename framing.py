"""How a detector box becomes the square crop the keypoint model sees, and how that
framing is measured on annotated faces so training can replay it (data_load.FaceCrop)."""
import numpy as np

from geometry import keypoint_box
from face_detector import to_gray

# The keypoint box's centre lies this many box widths below the Haar box's centre,
# and a Haar box padded by 0.3 per side is 1.8x the keypoint box: together they make
# the padded ROI match the training framing (measured by benchmarks/haar_framing.py).
HAAR_CENTER_SHIFT = 0.16
DEFAULT_MARGIN = 0.3


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
