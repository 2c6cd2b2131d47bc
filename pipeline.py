"""Detect -> crop -> net -> map back: the landmark stage shared by images, video and tracking.

A face's region of interest (ROI) is a square ``(x, y, side)`` in image pixels and a roll
angle: the crop is cut turned by that angle, so a tilted face reaches the network upright,
and its keypoints are mapped back through the same turn. Upright faces (|roll| below
ROLL_ALIGN_DEGREES) are cut exactly as in training (geometry.crop_square_array).
"""
import cv2
import numpy as np

from geometry import crop_points, crop_square_array, face_square, keypoint_box, uncrop_points
from markup import LEFT_EYE, RIGHT_EYE
from face_detector import non_max_suppression, to_gray
from framing import DEFAULT_MARGIN, roi_square
from keypointer import MIN_FACE_SCORE

# Re-framing passes on the predicted keypoints. The model trains on the detector's own
# framings, so none is needed by default (what a pass gains: the model card).
DEFAULT_REFINE = 0
# A face rolled further than this (eye line against the horizontal, from a first pass) is
# cut again, turned upright: the net saw few rolled faces, and a small angle costs a second
# pass on many faces for little gain (docs/experiments.md, "does cutting a rolled face upright help").
ROLL_ALIGN_DEGREES = 10.0
# So is a face whose keypoints ask for a square this much larger or smaller than the one it was
# cut from: Haar's box is often off the face's training framing, and a tighter ratio cuts more
# faces twice (docs/experiments.md, "should a face the detector framed too large or too small be cut again").
REFRAME_SCALE = 1.2
# A detection scoring under the face score is looked at once more in a square this much wider
# (same centre), then framed on what that finds, RESCUE_PASSES times: Haar's box sometimes sits
# on the mouth of a face three times its size.
RESCUE_ZOOM, RESCUE_PASSES = 1.6, 2


def roll_degrees(keypoints):
    """The face's roll: the angle of the line from the right eye's centre to the left eye's,
    degrees, positive when the face is turned clockwise on screen (y down)."""
    dx, dy = keypoints[LEFT_EYE].mean(0) - keypoints[RIGHT_EYE].mean(0)
    return float(np.degrees(np.arctan2(dy, dx)))


def _turn(angle, center):
    """2x3 affine turning points by ``-angle`` degrees about ``center``: a face rolled by
    ``angle`` comes out upright (OpenCV's positive angle is counter-clockwise on screen)."""
    return cv2.getRotationMatrix2D((float(center[0]), float(center[1])), float(angle), 1.0)


def _affine(matrix, points):
    return np.asarray(points, np.float64) @ matrix[:, :2].T + matrix[:, 2]


def _outer(square, size):
    """The upright square around ``square`` that holds it at any angle, and its crop size."""
    x, y, side = square
    big = int(np.ceil(size * np.sqrt(2)))
    big += (big - size) % 2                 # the inner crop sits on whole pixels
    outer = side * big / size
    return (x + side / 2 - outer / 2, y + side / 2 - outer / 2, outer), big


def _inner(size, big, angle):
    """Affine from the outer crop's pixels to the turned inner crop's (continuous coordinates)."""
    matrix = _turn(angle, (big / 2, big / 2))
    matrix[:, 2] -= (big - size) / 2
    return matrix


def crop_roi(gray, square, angle, size):
    """The ``size`` x ``size`` crop of ``square`` turned by ``-angle`` (the face upright).
    The turn is applied to an area-averaged crop of the surrounding square, so a large face
    is downscaled as in training before it is turned."""
    if angle == 0:
        return crop_square_array(gray, square, size)
    outer, big = _outer(square, size)
    matrix = _inner(size, big, angle)
    # warpAffine works in pixel indices (centres at integers); the project's continuous
    # coordinates put pixel i at [i, i + 1), half a pixel away.
    index_matrix = matrix.copy()
    index_matrix[:, 2] += matrix[:, :2] @ [0.5, 0.5] - 0.5
    return cv2.warpAffine(crop_square_array(gray, outer, big), index_matrix, (size, size), flags=cv2.INTER_LINEAR)


def roi_points(points, square, angle, size):
    """Image pixels -> pixels of :func:`crop_roi`'s crop."""
    if angle == 0:
        return crop_points(points, square, size)
    outer, big = _outer(square, size)
    return _affine(_inner(size, big, angle), crop_points(points, outer, big)).astype(np.float32)


def unroi_points(points, square, angle, size):
    """Pixels of :func:`crop_roi`'s crop -> image pixels (the inverse of :func:`roi_points`)."""
    if angle == 0:
        return uncrop_points(points, square, size)
    outer, big = _outer(square, size)
    return uncrop_points(_affine(cv2.invertAffineTransform(_inner(size, big, angle)), points), outer, big)


def keypoint_roi(keypoints, scale, align=ROLL_ALIGN_DEGREES):
    """The ROI (square, angle) that frames these keypoints as in training: upright when the
    roll is under ``align`` degrees, else turned by the roll, the square around the keypoint
    box measured in the turned frame."""
    roll = roll_degrees(keypoints)
    if abs(roll) < align:
        return face_square(keypoints, scale), 0.0
    center = keypoints.mean(0)
    (cx, cy), side = keypoint_box(_affine(_turn(roll, center), keypoints))
    cx, cy = _affine(cv2.invertAffineTransform(_turn(roll, center)), [[cx, cy]])[0]
    side *= scale
    return (cx - side / 2, cy - side / 2, side), roll


def predict_rois(gray, rois, keypointer):
    """(keypoints (N, 68, 2) in image pixels, face scores (N,) or None) for ROIs
    [(square, angle), ...] of ``gray``, as one batch."""
    size = keypointer.input_size
    crops = np.stack([crop_roi(gray, sq, a, size) for sq, a in rois])[:, None].astype(np.float32) / 255
    points, scores = keypointer.predict(crops)
    return np.stack([unroi_points(p, sq, a, size) for p, (sq, a) in zip(points, rois)]), scores


def misframed(roi, framed, reframe=REFRAME_SCALE):
    """Whether a face cut from ``roi`` is to be cut again from ``framed``, the ROI its keypoints
    ask for (:func:`keypoint_roi`): turned (the face rolled past the alignment angle), or
    ``reframe`` times larger or smaller."""
    (_, _, side), angle = framed
    # a collapsed keypoint box (side 0) gives no framing to cut again on
    return angle != 0 or (reframe is not None and side > 0 and abs(np.log(side / roi[0][2])) >= np.log(reframe))


def keypoints_for_rois(gray, rois, keypointer, refine=DEFAULT_REFINE, align=ROLL_ALIGN_DEGREES,
                       reframe=REFRAME_SCALE):
    """(keypoints (N, 68, 2) in image pixels, face scores (N,) or None) for ROIs.
    Each refine pass re-frames the faces on their keypoints; then faces :func:`misframed`
    are cut again on their keypoints, upright (``align=None``: never)."""
    if len(rois) == 0:
        return np.zeros((0, 68, 2), np.float32), None
    keypoints, scores = predict_rois(gray, rois, keypointer)
    for _ in range(refine):
        rois = [keypoint_roi(kp, keypointer.framing_scale, 180) for kp in keypoints]
        keypoints, scores = predict_rois(gray, rois, keypointer)
    if align is None:
        return keypoints, scores
    framed = [keypoint_roi(kp, keypointer.framing_scale, align) for kp in keypoints]
    again = [i for i, (roi, new) in enumerate(zip(rois, framed)) if misframed(roi, new, reframe)]
    if again:
        points, again_scores = predict_rois(gray, [framed[i] for i in again], keypointer)
        keypoints = keypoints.copy()
        keypoints[again] = points
        if scores is not None:
            scores = scores.copy()
            scores[again] = again_scores
    return keypoints, scores


def keypoints_for_squares(gray, squares, keypointer, refine=DEFAULT_REFINE, align=ROLL_ALIGN_DEGREES,
                          reframe=REFRAME_SCALE):
    """Keypoints (N, 68, 2) in image pixels for upright square ROIs (x, y, side)."""
    return keypoints_for_rois(gray, [(sq, 0.0) for sq in squares], keypointer, refine, align, reframe)[0]


def keypoints_for_boxes(gray, boxes, keypointer, margin=DEFAULT_MARGIN, refine=DEFAULT_REFINE,
                        align=ROLL_ALIGN_DEGREES, reframe=REFRAME_SCALE):
    """Keypoints (N, 68, 2) in image pixels for detector boxes (N, 4) of ``gray``."""
    return keypoints_for_squares(gray, [roi_square(b, margin) for b in boxes], keypointer, refine, align, reframe)


def faces_from(boxes, keypoints, scores, min_score):
    """[{'box', 'keypoints', 'score'}]: the faces scoring at least ``min_score`` (all when
    the model has no face score)."""
    faces = []
    for i, (box, kp) in enumerate(zip(boxes, keypoints)):
        score = None if scores is None else float(scores[i])
        if score is None or score >= min_score:
            faces.append({"box": [int(round(v)) for v in box], "keypoints": kp, "score": score})
    return faces


def rescue(gray, rois, keypointer, align=ROLL_ALIGN_DEGREES):
    """(keypoints, scores) for ROIs that scored too low: each looked at in a square
    RESCUE_ZOOM times wider, then framed on the keypoints found there (a misplaced box's face
    scores again; a non-face stays under it)."""
    wide = [((x + side / 2 - RESCUE_ZOOM * side / 2, y + side / 2 - RESCUE_ZOOM * side / 2, RESCUE_ZOOM * side), angle)
            for (x, y, side), angle in rois]
    keypoints, scores = keypoints_for_rois(gray, wide, keypointer, align=None)
    for _ in range(RESCUE_PASSES):
        keypoints, scores = keypoints_for_rois(gray, [keypoint_roi(kp, keypointer.framing_scale, align or 180)
                                                      for kp in keypoints], keypointer, align=None)
    return keypoints, scores


def detect_keypoints(image, detector, keypointer, margin=DEFAULT_MARGIN, refine=DEFAULT_REFINE,
                     min_score=MIN_FACE_SCORE, align=ROLL_ALIGN_DEGREES):
    """Faces in ``image``: a list of {'box': [x, y, w, h], 'keypoints': (68, 2) array,
    'score': the landmark model's face score or None}; detections scoring under
    ``min_score`` are looked at once more (:func:`rescue`), then dropped (0: keep all)."""
    gray = to_gray(image)
    boxes, angles = detections(detector, gray)
    faces = scored_faces(gray, boxes, keypointer, margin, refine, min_score, align, angles)
    if not faces and len(boxes) and getattr(detector, "only_when_empty", False) and detector.searches_wider:
        # the upright boxes held no face: search as if it had found none
        boxes, angles = detections(detector, gray, wider_only=True)
        faces = scored_faces(gray, boxes, keypointer, margin, refine, min_score, align, angles)
    return faces


def detections(detector, gray, wider_only=False):
    """(boxes, angles) from a FaceDetector, or (boxes, zeros) from any callable giving boxes."""
    if hasattr(detector, "detect"):
        return detector.detect(gray, wider_only) if wider_only else detector.detect(gray)
    boxes = np.asarray(detector(gray), np.float64).reshape(-1, 4)
    return boxes, np.zeros(len(boxes))


def scored_faces(gray, boxes, keypointer, margin, refine, min_score, align, angles=None, reframe=REFRAME_SCALE):
    """The faces of detector boxes (turned clockwise by ``angles`` degrees, default upright)
    that score at least ``min_score`` (after :func:`rescue`)."""
    angles = np.zeros(len(boxes)) if angles is None else angles
    rois = [(roi_square(b, margin), float(a)) for b, a in zip(boxes, angles)]
    keypoints, scores = keypoints_for_rois(gray, rois, keypointer, refine, align, reframe)
    low = [] if scores is None else [i for i, s in enumerate(scores) if s < min_score]
    if low:
        keypoints, scores, boxes = keypoints.copy(), scores.copy(), np.array(boxes, np.float64)
        keypoints[low], scores[low] = rescue(gray, [rois[i] for i in low], keypointer, align)
        boxes[low] = [points_box(kp) for kp in keypoints[low]]      # the box the face was found in
    kept = [i for i in range(len(boxes)) if scores is None or scores[i] >= min_score]   # as faces_from keeps them
    return distinct(faces_from(boxes, keypoints, scores, min_score), [i in low for i in kept])


def points_box(keypoints):
    """The keypoints' bounding box as x, y, w, h."""
    lo, hi = keypoints.min(0), keypoints.max(0)
    return np.array([lo[0], lo[1], hi[0] - lo[0], hi[1] - lo[1]])


def distinct(faces, rescued=None):
    """The faces, one per face: of detections whose keypoint boxes overlap (a box inside a face,
    looked at again by :func:`rescue`, finds the same face), a face found at the first look
    stays before a rescued one, then the higher-scoring one."""
    if len(faces) < 2:
        return faces
    rescued = rescued or [False] * len(faces)
    order = sorted(range(len(faces)), key=lambda i: (rescued[i], -(faces[i]["score"] or 0)))
    keep = non_max_suppression(np.array([points_box(faces[i]["keypoints"]) for i in order], np.float64))
    return [faces[order[k]] for k in sorted(keep, key=lambda k: order[k])]
