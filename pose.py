"""Head pose from the 68 keypoints: yaw, pitch and roll in degrees.

OpenCV's ``solvePnP`` fits a generic 3D face (:data:`FACE_MODEL_3D`) to the 2D keypoints
through a pinhole camera whose focal length is the image's longer side and whose
principal point is the image centre (no calibration is known for a photograph).

Sign convention (image axes: x to the right, y down), for the subject's head:

* **yaw** > 0: the face turns towards the image's right (the subject turns to their own left);
* **pitch** > 0: the face tilts up (the nose moves up in the image);
* **roll** > 0: the face rotates clockwise in the image (its right-eye corner, point 36,
  rises above its left-eye corner, point 45).

Frontal is (0, 0, 0). Internally the head's rotation is ``Rz(roll) @ Ry(-yaw) @ Rx(-pitch)``
in camera axes (x right, y down, z away from the camera).
"""
import cv2
import numpy as np

from markup import FLIP_PERMUTATION

# The generic face, in millimetres, origin between the outer eye corners. x and y: the
# mean shape of the 2,012 300-W training faces with their mirror images (similarity-aligned,
# scaled to an outer-eye distance of 90 mm). z (away from the camera): a depth for each part
# (below) from typical facial proportions: jaw curving back to the ears, nose forward.
_MEAN_XY = np.array([
    [-74.2, 1.6], [-73.6, 21.1], [-71.4, 40.6], [-67.3, 59.6], [-59.7, 77.3], [-48.0, 92.7], [-33.8, 105.6],
    [-18.0, 116.0], [0.0, 119.0], [18.0, 116.0], [33.8, 105.6], [48.0, 92.7], [59.7, 77.3], [67.3, 59.6],
    [71.4, 40.6], [73.6, 21.1], [74.2, 1.6],                                                       # jaw
    [-59.8, -13.9], [-50.6, -21.9], [-38.0, -24.2], [-24.8, -22.4], [-12.3, -17.6],                # brows
    [12.3, -17.6], [24.8, -22.4], [38.0, -24.2], [50.6, -21.9], [59.8, -13.9],
    [0.0, -1.9], [0.0, 10.8], [0.0, 23.5], [0.0, 36.4],                                            # nose
    [-14.9, 45.1], [-7.7, 47.7], [0.0, 50.1], [7.7, 47.7], [14.9, 45.1],
    [-45.0, 0.0], [-37.1, -4.7], [-27.5, -4.6], [-19.4, 1.7], [-28.2, 3.6], [-37.7, 3.4],          # eyes
    [19.4, 1.7], [27.5, -4.6], [37.1, -4.7], [45.0, 0.0], [37.7, 3.4], [28.2, 3.6],
    [-28.5, 69.2], [-18.1, 64.7], [-7.3, 62.5], [0.0, 64.3], [7.3, 62.5], [18.1, 64.7],            # lips
    [28.5, 69.2], [18.4, 79.4], [8.0, 83.8], [0.0, 84.6], [-8.0, 83.8], [-18.4, 79.4],
    [-24.1, 69.8], [-7.5, 68.9], [0.0, 69.6], [7.5, 68.9], [24.1, 69.8], [7.6, 74.1], [0.0, 75.0], [-7.6, 74.1]])


def _depth(xy):
    x = xy[:, 0]
    z = np.zeros(len(xy))
    jaw = np.arange(17)
    z[jaw] = 75 * (1 - np.cos(np.radians((jaw - 8) / 8 * 80))) - 5      # ears ~60 mm behind the chin
    brows = np.arange(17, 27)
    z[brows] = -8 + 18 * (x[brows] / 60) ** 2
    z[27:31] = (-5, -12, -20, -30)                                          # bridge to tip
    z[31:36] = -18 + 10 * np.abs(x[31:36]) / 15
    z[36:48] = 8 * (np.abs(x[36:48]) - 19.4) / 25.6                         # inner corners 0, outer 8
    z[48:60] = -12 + 17 * (x[48:60] / 28.5) ** 2
    z[60:68] = -8 + 13 * (x[60:68] / 24.1) ** 2
    return z


FACE_MODEL_3D = np.column_stack([_MEAN_XY, _depth(_MEAN_XY)]).astype(np.float64)
AXIS_LENGTH_MM = 60.0


def camera_matrix(width, height):
    """A pinhole camera for an image of this size: focal length the longer side, centred."""
    focal = float(max(width, height))
    return np.array([[focal, 0, width / 2], [0, focal, height / 2], [0, 0, 1]], np.float64)


def rotation(yaw, pitch, roll):
    """The head's rotation matrix (camera axes) for angles in degrees (module docstring)."""
    y, p, r = np.radians([yaw, pitch, roll])
    rz = np.array([[np.cos(r), -np.sin(r), 0], [np.sin(r), np.cos(r), 0], [0, 0, 1]])
    ry = np.array([[np.cos(-y), 0, np.sin(-y)], [0, 1, 0], [-np.sin(-y), 0, np.cos(-y)]])
    rx = np.array([[1, 0, 0], [0, np.cos(-p), -np.sin(-p)], [0, np.sin(-p), np.cos(-p)]])
    return rz @ ry @ rx


def angles(matrix):
    """(yaw, pitch, roll) in degrees of a rotation matrix built as in :func:`rotation`."""
    minus_yaw = np.arcsin(np.clip(-matrix[2, 0], -1, 1))
    minus_pitch = np.arctan2(matrix[2, 1], matrix[2, 2])
    roll = np.arctan2(matrix[1, 0], matrix[0, 0])
    return tuple(float(v) for v in np.degrees([-minus_yaw, -minus_pitch, roll]))


def project(yaw, pitch, roll, translation, width, height, model=FACE_MODEL_3D):
    """The 2D image points of the 3D face posed at these angles, ``translation`` mm from the camera."""
    rvec, _ = cv2.Rodrigues(rotation(yaw, pitch, roll))
    points, _ = cv2.projectPoints(model, rvec, np.asarray(translation, np.float64), camera_matrix(width, height), None)
    return points.reshape(-1, 2)


def solve(keypoints, width, height):
    """(rvec, tvec) of the generic face fitted to (68, 2) keypoints in image pixels."""
    image_points = np.asarray(keypoints, np.float64).reshape(-1, 1, 2)
    camera = camera_matrix(width, height)
    ok, rvec, tvec = cv2.solvePnP(FACE_MODEL_3D, image_points, camera, None, flags=cv2.SOLVEPNP_EPNP)
    if ok:   # EPnP gives the start, Levenberg-Marquardt the least-squares fit
        ok, rvec, tvec = cv2.solvePnP(FACE_MODEL_3D, image_points, camera, None, rvec, tvec, True,
                                      cv2.SOLVEPNP_ITERATIVE)
    if not ok or tvec[2, 0] <= 0:
        return None
    return rvec, tvec


def head_pose(keypoints, width, height):
    """{'yaw', 'pitch', 'roll'} in degrees (rounded to 0.1), or None if no fit is found."""
    fit = solve(keypoints, width, height)
    if fit is None:
        return None
    yaw, pitch, roll = angles(cv2.Rodrigues(fit[0])[0])
    return {"yaw": round(yaw, 1), "pitch": round(pitch, 1), "roll": round(roll, 1)}


def _aligned(shapes, reference):
    """Complex shapes (N, 68), centred and similarity-aligned onto a unit-norm reference."""
    centred = shapes - shapes.mean(1, keepdims=True)
    scale_rotation = (np.conj(centred) * reference).sum(1) / (np.abs(centred) ** 2).sum(1)
    return centred * scale_rotation[:, None]


def turn_amount(keypoints, rounds=5):
    """(N,) how far each face of (N, 68, 2) keypoints is turned from frontal, in shape units:
    the magnitude of its projection on the first principal component of the shapes aligned by
    generalised Procrustes analysis, mirrors included so that the mean face is frontal and the
    component is the yaw (the pose-based data balancing of Feng et al., Wing loss, 2018).
    A population measure: it needs many faces, of varied turn."""
    points = np.asarray(keypoints, np.float64)
    shapes = points[..., 0] + 1j * points[..., 1]
    both = np.concatenate([shapes, -np.conj(shapes)[:, FLIP_PERMUTATION]])
    mean = both[0] - both[0].mean()
    for _ in range(rounds):
        mean = _aligned(both, mean / np.linalg.norm(mean)).mean(0)
    aligned = _aligned(both, mean / np.linalg.norm(mean))
    flat = np.concatenate([aligned.real, aligned.imag], 1)
    flat -= flat.mean(0)
    first = np.linalg.svd(flat, full_matrices=False)[2][0]
    return np.abs(flat[:len(shapes)] @ first)


def draw_axes(canvas, keypoints, thickness=2):
    """Draw the head's axes from the nose bridge: red towards the subject's left (image right
    when frontal), green down, blue out of the face towards the camera."""
    height, width = canvas.shape[:2]
    fit = solve(keypoints, width, height)
    if fit is None:
        return canvas
    ends = np.array([[0, 0, 0], [AXIS_LENGTH_MM, 0, 0], [0, AXIS_LENGTH_MM, 0], [0, 0, -AXIS_LENGTH_MM]])
    points, _ = cv2.projectPoints(ends + FACE_MODEL_3D[27], *fit, camera_matrix(width, height), None)
    origin, *tips = [tuple(int(round(v)) for v in p) for p in points.reshape(-1, 2)]
    for tip, colour in zip(tips, ((255, 0, 0), (0, 200, 0), (0, 80, 255))):
        cv2.arrowedLine(canvas, origin, tip, colour, thickness, cv2.LINE_AA, tipLength=0.15)
    return canvas
