"""Clips with exact ground truth in every frame: an annotated photograph moved, turned and
zoomed over a face-free background, then taken out of the frame and brought back.

Timeline (seconds at FPS): the face holds still for STILL_S, moves about for MOVE_S, leaves to
the right, stays out for ABSENT_S, and enters from the left and settles. The clip's truth records per frame the
keypoints (project convention) and whether the face is wholly in view, or wholly out of it.
"""
import numpy as np
import cv2

from geometry import keypoint_box

FPS = 30
FRAME_SIZE = (640, 480)                  # width, height
FACE_SIDE = 150.0                        # keypoint-box side in the frame at zoom 1, pixels
STILL_S, MOVE_S, LEAVE_S, ABSENT_S, ENTER_S, REST_S = 2.0, 4.0, 0.5, 1.5, 0.5, 1.0
PHOTO_MARGIN = 1.1                       # the pasted photo reaches this many face sides past the face


def background(seed=0):
    """A face-free textured background: scikit-image's gravel, stretched to the frame."""
    from skimage import data
    gravel = cv2.resize(np.asarray(data.gravel()), FRAME_SIZE, interpolation=cv2.INTER_LINEAR)
    return np.repeat(gravel[..., None], 3, 2)


def pose_at(t, width=FRAME_SIZE[0], height=FRAME_SIZE[1]):
    """(centre x, centre y, roll degrees, zoom) of the face at time ``t``, or None while it is
    out of the frame. Still (a slight sway), then moving about, leaving, away, and back."""
    cx, cy = width / 2, height / 2
    if t < STILL_S:
        return cx + 3 * np.sin(2 * np.pi * t / 2), cy, np.sin(2 * np.pi * t / 2), 1.0
    t -= STILL_S
    if t < MOVE_S:          # about the frame: up to 200 px and 30 degrees a second
        return (cx + 0.25 * width * np.sin(2 * np.pi * t / 5), cy + 0.1 * height * np.sin(2 * np.pi * t / 3),
                20 * np.sin(2 * np.pi * t / 4), 1 + 0.25 * np.sin(2 * np.pi * t / 6))
    x0, y0, _, zoom0 = pose_at(STILL_S + MOVE_S - 1e-9)
    out = width / 2 + 2 * PHOTO_MARGIN * FACE_SIDE          # far enough that nothing of it shows
    t -= MOVE_S
    if t < LEAVE_S:                                         # leaves to the right
        return x0 + (cx + out - x0) * t / LEAVE_S, y0, 0.0, zoom0
    t -= LEAVE_S
    if t < ABSENT_S:
        return None
    t -= ABSENT_S
    if t < ENTER_S:                                         # enters from the left
        return cx - out + out * t / ENTER_S, cy, 0.0, 1.0
    return cx, cy, 0.0, 1.0


def frame_count():
    return int(round((STILL_S + MOVE_S + LEAVE_S + ABSENT_S + ENTER_S + REST_S) * FPS))


def in_view_frames():
    """Frames before the face starts to leave: one face in view all along."""
    return int(round((STILL_S + MOVE_S) * FPS))


def make_clip(photo, keypoints, seed=0):
    """(frames: list of (H, W, 3) uint8 RGB, truth: dict of per-frame arrays 'keypoints' (F, 68, 2),
    'in_view', 'absent' and 'steady' (F,) bool) for one annotated face of ``photo``. Steady
    frames are the still and moving parts, before the face leaves at 1,300 pixels a second."""
    photo = photo if photo.ndim == 3 else np.repeat(photo[..., None], 3, 2)
    (fx, fy), side = keypoint_box(keypoints)
    back, (width, height) = background(seed), FRAME_SIZE
    frames, points, in_view, absent = [], [], [], []
    for i in range(frame_count()):
        pose = pose_at(i / FPS)
        if pose is None:
            frames.append(back.copy())
            points.append(np.full((68, 2), np.nan))
            in_view.append(False)
            absent.append(True)
            continue
        cx, cy, roll, zoom = pose
        scale = zoom * FACE_SIDE / side
        # photo -> frame, continuous coordinates: turn by -roll (clockwise on screen for roll > 0)
        turn = cv2.getRotationMatrix2D((float(fx), float(fy)), -float(roll), float(scale))
        turn[:, 2] += (cx - fx, cy - fy)
        truth = keypoints @ turn[:, :2].T + turn[:, 2]
        index = turn.copy()                                  # the same map in pixel indices
        index[:, 2] += turn[:, :2] @ [0.5, 0.5] - 0.5
        mask = np.zeros(photo.shape[:2], np.uint8)
        reach = int(PHOTO_MARGIN * side)
        mask[max(0, int(fy) - reach):int(fy) + reach, max(0, int(fx) - reach):int(fx) + reach] = 1
        warped = cv2.warpAffine(photo, index, (width, height), flags=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
        inside = cv2.warpAffine(mask, index, (width, height), flags=cv2.INTER_NEAREST).astype(bool)
        frame = back.copy()
        frame[inside] = warped[inside]
        frames.append(frame)
        points.append(truth)
        in_view.append(bool((truth >= 0).all() and (truth[:, 0] < width).all() and (truth[:, 1] < height).all()))
        absent.append(not inside.any())
    steady = np.arange(len(frames)) < in_view_frames()
    return frames, {"keypoints": np.array(points), "in_view": np.array(in_view), "absent": np.array(absent),
                    "steady": steady}


def write_clip(path, frames):
    """The frames as an mp4 (mp4v) at FPS."""
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"mp4v"), FPS, FRAME_SIZE)
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()


# Synthetic expressions for replaying smoothers: the mouth opening and closing (lower lip and
# chin moved down the face), as (name, frequency Hz, opening in eye distances). The clips move a
# photograph rigidly, so a smoother tuned on them alone would be free to lag every expression.
EXPRESSIONS = (("mouth 1 Hz", 1.0, 0.4), ("mouth 3 Hz", 3.0, 0.15), ("mouth 5 Hz", 5.0, 0.1))
LOWER_FACE = {**{k: 1.0 for k in (55, 56, 57, 58, 59, 65, 66, 67)}, **{k: 0.6 for k in (6, 7, 8, 9, 10)}}


def with_expression(predicted, truth, hz, opening):
    """(predicted, truth) with the same mouth movement added to the truth and to the first face
    predicted in each frame, as a perfect tracker would see it on top of its own errors."""
    keypoints, moved = truth["keypoints"].astype(np.float64), []
    weights = np.zeros((68, 1))
    weights[list(LOWER_FACE)] = np.array(list(LOWER_FACE.values()))[:, None]
    for i, faces in enumerate(predicted):
        across = keypoints[i][45] - keypoints[i][36]
        if not np.isfinite(across).all():                       # no face in this frame's truth
            moved.append(faces)
            continue
        down = np.array([-across[1], across[0]])                # image y grows downwards
        shift = weights * (opening * (1 - np.cos(2 * np.pi * hz * i / FPS)) / 2 * down)
        keypoints[i] = keypoints[i] + shift
        if len(faces):
            faces = np.concatenate([faces[:1] + shift, faces[1:]])
        moved.append(faces)
    return moved, {**truth, "keypoints": keypoints}


def _eye(keypoints):
    return float(np.linalg.norm(keypoints[36] - keypoints[45]))


def on_face(faces, target):
    """The predicted face nearest the truth (its centre within one eye distance), or None."""
    near = [f for f in faces if np.linalg.norm(f.mean(0) - target.mean(0)) < _eye(target)]
    return min(near, key=lambda f: np.linalg.norm(f - target, axis=1).mean()) if near else None


def clip_scores(predicted, truth, missed_nme=0.10, grace=2):
    """Per-clip figures from the faces predicted in each frame (a list of (N_i, 68, 2) arrays):
    NME over the steady frames (a frame without a face on the truth counts ``missed_nme``); jitter,
    the mean over consecutive steady frames both found of the mean point-to-point change of the
    error, over the eye distance; false faces in absent frames more than ``grace`` frames after
    the face left; and frames from the face's return into full view until it is found."""
    errors, residuals, false_faces = [], [None] * len(predicted), 0
    for i, faces in enumerate(predicted):
        target = truth["keypoints"][i]
        if truth["absent"][i]:
            if i >= grace and truth["absent"][i - grace:i + 1].all():
                false_faces += len(faces)
        elif truth["in_view"][i] and truth["steady"][i]:
            best = on_face(faces, target)
            if best is None:
                errors.append(missed_nme)
            else:
                errors.append(np.linalg.norm(best - target, axis=1).mean() / _eye(target))
                residuals[i] = (best - target) / _eye(target)
    jitter = [np.linalg.norm(a - b, axis=1).mean() for a, b in zip(residuals, residuals[1:])
              if a is not None and b is not None]
    reacquire, gone = None, np.flatnonzero(truth["absent"])
    if len(gone):
        back = gone[-1] + 1 + int(np.argmax(truth["in_view"][gone[-1] + 1:]))
        found = [i for i in range(back, len(predicted)) if on_face(predicted[i], truth["keypoints"][i]) is not None]
        reacquire = found[0] - back if found else None
    return {"nme": float(np.mean(errors)), "jitter": float(np.mean(jitter)) if jitter else None,
            "false_faces": int(false_faces), "frames_to_reacquire": reacquire}
