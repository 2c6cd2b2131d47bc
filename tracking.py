"""Faces through video: track each face from its keypoints in the previous frame, re-detect
only when a face is lost (and now and then, for new faces), and smooth the keypoints.

A tracked face's next ROI is the training framing of its previous keypoints (square, turned
upright when it rolls: pipeline.keypoint_roi). It is lost when the landmark model's face score
falls under ``min_score`` or its keypoints leave the frame. Smoothing is One Euro filtering
(Casiez, Roussel and Vogel, CHI 2012) of the face's pose and, apart, of each part of its shape,
speeds measured in face sizes.
"""
import math

import numpy as np

from geometry import keypoint_box
from face_detector import to_gray
from framing import DEFAULT_MARGIN, match_box
from keypointer import MIN_FACE_SCORE
from markup import FACE_PARTS, NUM_KEYPOINTS
from pipeline import ROLL_ALIGN_DEGREES, detections, keypoint_roi, keypoints_for_rois, points_box, scored_faces

# Frames between detector runs while every face is tracked (new faces appear within this).
REDETECT_EVERY = 30
# One Euro defaults, measured on generated clips with and without expressions (benchmarks/video.py;
# docs/experiments.md): cut-off in Hz at rest, and how fast it opens with speed (face sizes per second).
SMOOTH_MIN_CUTOFF = 0.5
SMOOTH_BETA = 60.0           # the pose's
SMOOTH_SHAPE_BETA = 60.0     # each face part's, in the face's own frame
SMOOTH_D_CUTOFF = 1.0
FALLBACK_FPS = 30.0          # frame times when the caller gives none
# The face's parts (markup.FACE_PARTS, consecutive runs of points), smoothed apart, by first index.
FACE_PART_STARTS = tuple(sorted(points.start for points, _ in FACE_PARTS.values()))
FACE_PART_SIZES = np.diff(FACE_PART_STARTS + (NUM_KEYPOINTS,))


class OneEuroFilter:
    """A One Euro filter over a face's keypoints (K, 2), one cut-off for the whole face (the
    smoothing before PoseShapeFilter, kept as the benchmark's reference).

    The speed that opens the filter is the keypoints' mean speed (pixels per second, over
    ``scale``, the face's size): averaged over 68 points it is far less noisy than each
    point's own, so the filter can open fast on motion without opening on jitter."""

    def __init__(self, min_cutoff, beta, d_cutoff=SMOOTH_D_CUTOFF):
        self.min_cutoff, self.beta, self.d_cutoff = min_cutoff, beta, d_cutoff
        self.value = self.speed = self.time = None

    @staticmethod
    def _alpha(cutoff, dt):
        tau = 1.0 / (2 * math.pi * cutoff)
        return 1.0 / (1.0 + tau / dt)

    def __call__(self, value, time, scale=1.0):
        value = np.asarray(value, np.float64)
        if self.value is None or time <= self.time:
            self.value, self.speed, self.time = value.copy(), 0.0, time
            return value
        dt = time - self.time
        speed = float(np.linalg.norm(value - self.value, axis=-1).mean()) / dt / scale
        self.speed += self._alpha(self.d_cutoff, dt) * (speed - self.speed)
        self.value = self.value + self._alpha(self.min_cutoff + self.beta * self.speed, dt) * (value - self.value)
        self.time = time
        return self.value


class PoseShapeFilter:
    """One Euro filtering of a face's pose and, apart from it, of each part of its shape.

    A filter on the whole face must open when the head moves, and then lets every point's
    noise through. Here the pose (a similarity fitted to all 68 points: centre, size, roll)
    is smoothed as two virtual points, centre ± the similarity's unit vector, and the shape
    (the points in the face's own frame) part by part (jaw, brows, nose, eyes, lips): it
    barely changes while the head moves, so each part's filter stays shut until that part
    moves (the mouth speaking, the brows rising), measured by its own mean speed. Noise-free points come back exactly:
    ``x = centre + pose * shape``, as complex numbers."""

    def __init__(self, min_cutoff=SMOOTH_MIN_CUTOFF, beta=SMOOTH_BETA, shape_beta=SMOOTH_SHAPE_BETA,
                 d_cutoff=SMOOTH_D_CUTOFF):
        self.min_cutoff, self.d_cutoff = min_cutoff, d_cutoff
        self.betas = np.array([beta] + [shape_beta] * len(FACE_PART_STARTS))     # the pose's, each part's
        self.ends = self.shape = self.speeds = self.time = None

    def __call__(self, value, time, scale=1.0):
        points = np.asarray(value, np.float64)
        z = _complex(points)
        centre, offsets = z.mean(), z - z.mean()
        fresh = self.time is None or time <= self.time
        if fresh:
            pose = np.sqrt(np.mean(np.abs(offsets) ** 2))                    # unit RMS radius, upright
        else:
            pose = np.vdot(self.shape, offsets) / np.vdot(self.shape, self.shape)   # the similarity that fits best
        if not abs(pose) > 0:                   # every point on one spot: nothing to fit, start afresh
            self.time = None
            return points.copy()
        if fresh:
            self.ends, self.shape = np.array([centre - pose, centre + pose]), offsets / pose
            self.speeds, self.time = np.zeros(len(self.betas)), time
            return points.copy()
        dt, self.time = time - self.time, time
        ends, shape = np.array([centre - pose, centre + pose]), offsets / pose
        # speeds in face sizes per second: the pose's two ends, and each part's points in pixels
        part_moves = np.add.reduceat(np.abs(shape - self.shape), FACE_PART_STARTS) / FACE_PART_SIZES
        speeds = np.concatenate([[np.abs(ends - self.ends).mean()], part_moves * abs(pose)]) / dt / scale
        self.speeds += OneEuroFilter._alpha(self.d_cutoff, dt) * (speeds - self.speeds)
        alphas = OneEuroFilter._alpha(self.min_cutoff + self.betas * self.speeds, dt)
        self.ends = self.ends + alphas[0] * (ends - self.ends)
        self.shape = self.shape + np.repeat(alphas[1:], FACE_PART_SIZES) * (shape - self.shape)
        return _real(self.ends.mean() + (self.ends[1] - self.ends[0]) / 2 * self.shape)


def _complex(points):
    return points[:, 0] + 1j * points[:, 1]


def _real(z):
    return np.stack([z.real, z.imag], axis=-1)


def face_size(keypoints):
    """The longer side of the keypoints' box, pixels."""
    return keypoint_box(keypoints)[1]


class Track:
    def __init__(self, keypoints, score, smooth):
        self.keypoints, self.score = keypoints, score   # the network's, unsmoothed: next frame's ROI
        self.filter = PoseShapeFilter(*smooth) if smooth else None


class FaceTracker:
    """Call with successive frames (and their times, seconds); returns each frame's faces as
    pipeline.detect_keypoints does, the box being the keypoints' box for a tracked face.

    ``smooth``: (min_cutoff, beta, shape_beta) of the PoseShapeFilter, or None for raw keypoints."""

    def __init__(self, detector, keypointer, margin=DEFAULT_MARGIN, min_score=MIN_FACE_SCORE,
                 redetect_every=REDETECT_EVERY, smooth=(SMOOTH_MIN_CUTOFF, SMOOTH_BETA, SMOOTH_SHAPE_BETA), align=ROLL_ALIGN_DEGREES):
        self.detector, self.keypointer, self.margin, self.min_score = detector, keypointer, margin, min_score
        self.redetect_every, self.smooth, self.align = redetect_every, smooth, align
        self.tracks, self.frames, self.detector_calls, self._since_detect = [], 0, 0, 0

    def _follow(self, gray):
        """Move every track to this frame; returns False if one was lost."""
        if not self.tracks:
            return True
        rois = [keypoint_roi(t.keypoints, self.keypointer.framing_scale, self.align or 180) for t in self.tracks]
        keypoints, scores = keypoints_for_rois(gray, rois, self.keypointer, align=None)
        height, width = gray.shape
        kept = []
        for i, track in enumerate(self.tracks):
            cx, cy = keypoints[i].mean(0)
            inside = 0 <= cx < width and 0 <= cy < height
            if inside and (scores is None or scores[i] >= self.min_score):
                track.keypoints, track.score = keypoints[i], None if scores is None else float(scores[i])
                kept.append(track)
        lost = len(kept) < len(self.tracks)
        self.tracks = kept
        return not lost

    def _detect(self, gray):
        """Start a track on every detected face that no track already covers."""
        self.detector_calls += 1
        self._since_detect = 0
        boxes, angles = detections(self.detector, gray)
        covered = [match_box(boxes, t.keypoints) for t in self.tracks]
        new = [j for j in range(len(boxes)) if j not in covered]
        for face in scored_faces(gray, boxes[new], self.keypointer, self.margin, 0, self.min_score, self.align,
                                 angles[new]):
            self.tracks.append(Track(face["keypoints"], face["score"], self.smooth))

    def __call__(self, image, time=None):
        gray = to_gray(image)
        time = self.frames / FALLBACK_FPS if time is None else time
        self.frames += 1
        self._since_detect += 1
        kept_all = self._follow(gray)
        if not self.tracks or not kept_all or self._since_detect >= self.redetect_every:
            self._detect(gray)
        faces = []
        for track in self.tracks:
            points = track.keypoints
            if track.filter is not None:
                points = track.filter(points, time, face_size(points)).astype(np.float32)
            faces.append({"box": [int(round(v)) for v in points_box(points)], "keypoints": points, "score": track.score})
        return faces
