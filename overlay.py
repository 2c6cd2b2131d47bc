"""Fun with keypoints: sunglasses and a moustache placed, scaled and rotated by each face's points.

The overlays are drawn here with OpenCV (RGBA, nothing downloaded). Each comes with two anchor
points in its own pixels that are mapped onto two points of the face (a similarity transform:
shift, scale, rotation), so it follows the face's size and roll:

* sunglasses: the lens centres onto the eye centres (mean of points 36-41 and 42-47), raised
  towards the brows (17-26) so the frame covers them;
* moustache: its two tips onto points a little inside the mouth corners (48, 54), lifted
  towards the nose base (33).
"""
import cv2
import numpy as np

from markup import LEFT_EYE, RIGHT_EYE

OVERLAY_SIZE = (400, 140)     # width, height of the drawn overlays, pixels (scaled onto each face)


def sunglasses(width=OVERLAY_SIZE[0], height=OVERLAY_SIZE[1]):
    """(RGBA image, anchors (2, 2)): two dark lenses with a frame, a bridge and arm stubs."""
    image = np.zeros((height, width, 4), np.uint8)
    cy, rx, ry = height // 2, int(width * 0.2), int(height * 0.38)
    centres = [(int(width * 0.27), cy), (int(width * 0.73), cy)]
    for cx, _ in centres:
        cv2.ellipse(image, (cx, cy), (rx, ry), 0, 0, 360, (25, 25, 35, 225), -1, cv2.LINE_AA)   # lens
        cv2.ellipse(image, (cx - rx // 3, cy - ry // 3), (rx // 4, ry // 6), -20, 0, 360,
                    (200, 210, 230, 120), -1, cv2.LINE_AA)                                          # glint
        cv2.ellipse(image, (cx, cy), (rx, ry), 0, 0, 360, (10, 10, 10, 255), max(2, width // 60), cv2.LINE_AA)
    thickness = max(2, width // 50)
    cv2.line(image, (centres[0][0] + rx, cy - ry // 3), (centres[1][0] - rx, cy - ry // 3), (10, 10, 10, 255),
             thickness, cv2.LINE_AA)                                                                # bridge
    for x0, x1 in ((centres[0][0] - rx, 2), (centres[1][0] + rx, width - 3)):
        cv2.line(image, (x0, cy - ry // 3), (x1, cy - ry // 2), (10, 10, 10, 255), thickness, cv2.LINE_AA)
    return image, np.array(centres, np.float64)


def moustache(width=OVERLAY_SIZE[0], height=OVERLAY_SIZE[1]):
    """(RGBA image, anchors (2, 2)): a curled handlebar moustache, anchored at its tips' bases."""
    image = np.zeros((height, width, 4), np.uint8)
    cx, cy = width // 2, height // 2
    t = np.linspace(0, 1, 40)
    for side in (-1, 1):
        # upper edge and lower edge of one half, from the centre out to a curl
        xs = cx + side * t * width * 0.42
        upper = cy - height * 0.18 * np.sin(np.pi * t) - height * 0.05
        lower = cy + height * 0.22 * np.sin(np.pi * t * 0.9) * (1 - t) + height * 0.05
        outline = np.concatenate([np.stack([xs, upper], 1), np.stack([xs, lower], 1)[::-1]]).astype(np.int32)
        cv2.fillPoly(image, [outline], (60, 40, 25, 240), cv2.LINE_AA)
        tip = (int(cx + side * width * 0.42), int(cy - height * 0.08))
        cv2.ellipse(image, tip, (int(width * 0.05), int(height * 0.14)), 0, 90 - side * 90, 270 - side * 90,
                    (60, 40, 25, 240), max(3, width // 45), cv2.LINE_AA)                          # curl
    anchors = np.array([[cx - width * 0.22, cy], [cx + width * 0.22, cy]])
    return image, anchors


OVERLAYS = {"sunglasses": sunglasses, "moustache": moustache}


def face_anchors(name, keypoints):
    """The two face points an overlay's anchors go to, in image pixels."""
    kp = np.asarray(keypoints, np.float64)
    if name == "sunglasses":
        eyes = np.stack([kp[RIGHT_EYE].mean(0), kp[LEFT_EYE].mean(0)])
        lift = (kp[17:27].mean(0) - eyes.mean(0)) * 0.25      # a quarter of the way to the brows
        return eyes + lift
    if name == "moustache":
        corners = kp[[48, 54]]
        inside = corners + (corners.mean(0) - corners) * 0.1
        return inside + (kp[33] - corners.mean(0)) * 0.45      # about halfway up to the nose base
    raise ValueError(f"unknown overlay {name!r}; choose from {', '.join(OVERLAYS)}")


def similarity(src, dst):
    """The 2x3 matrix of the shift, scale and rotation taking two points ``src`` onto ``dst``."""
    (a, b), (c, d) = src, dst
    vs, vd = b - a, d - c
    scale = np.linalg.norm(vd) / np.linalg.norm(vs)
    angle = np.arctan2(vd[1], vd[0]) - np.arctan2(vs[1], vs[0])
    rot = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    return np.hstack([rot, (c - rot @ a)[:, None]])


def apply(image, faces, name):
    """A copy of the RGB image with overlay ``name`` on every face (faces from detect_keypoints)."""
    if name not in OVERLAYS:
        raise ValueError(f"unknown overlay {name!r}; choose from {', '.join(OVERLAYS)}")
    art, anchors = OVERLAYS[name]()
    canvas = image[..., :3].astype(np.float32)
    height, width = canvas.shape[:2]
    for face in faces:
        matrix = similarity(anchors, face_anchors(name, face["keypoints"]))
        warped = cv2.warpAffine(art, matrix, (width, height), flags=cv2.INTER_LINEAR, borderValue=0).astype(np.float32)
        alpha = warped[..., 3:] / 255
        canvas = canvas * (1 - alpha) + warped[..., :3] * alpha
    return np.clip(canvas + 0.5, 0, 255).astype(np.uint8)
