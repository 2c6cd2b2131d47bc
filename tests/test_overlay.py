"""Overlays follow the keypoints: anchors land on the face, scale and roll with it."""
import numpy as np
import pytest

import detect
import overlay
import pipeline


def test_similarity_maps_the_anchor_pair_exactly():
    src, dst = np.array([[10.0, 20.0], [50.0, 20.0]]), np.array([[100.0, 100.0], [100.0, 180.0]])
    matrix = overlay.similarity(src, dst)
    mapped = src @ matrix[:, :2].T + matrix[:, 2]
    np.testing.assert_allclose(mapped, dst, atol=1e-9)
    assert np.linalg.det(matrix[:, :2]) == pytest.approx(4.0)     # scale 2, rotation 90 degrees


@pytest.mark.parametrize("name", sorted(overlay.OVERLAYS))
def test_overlay_is_drawn_where_its_face_points_are_and_rolls_with_the_face(name, astronaut):
    image, faces = astronaut
    drawn = overlay.apply(image, faces, name)
    changed = np.argwhere((drawn != image).any(2))[:, ::-1]          # (x, y) of the changed pixels
    target = overlay.face_anchors(name, faces[0]["keypoints"]).mean(0)
    eye = np.linalg.norm(faces[0]["keypoints"][36] - faces[0]["keypoints"][45])
    assert len(changed) > 100 and np.linalg.norm(changed.mean(0) - target) < 0.3 * eye
    # the same face turned by 90 degrees in the image: the overlay's extent turns with it
    turned = np.ascontiguousarray(np.rot90(image))                  # (x, y) -> (y, W - 1 - x) up to the pixel convention
    kp = faces[0]["keypoints"]
    turned_faces = [{"box": faces[0]["box"], "keypoints": np.stack([kp[:, 1], image.shape[1] - kp[:, 0]], 1)}]
    changed_turned = np.argwhere((overlay.apply(turned, turned_faces, name) != turned).any(2))[:, ::-1]
    spread, spread_turned = np.ptp(changed, 0), np.ptp(changed_turned, 0)
    np.testing.assert_allclose(spread_turned, spread[::-1], rtol=0.1, atol=3)


def test_unknown_overlay_is_a_clear_error(astronaut):
    with pytest.raises(ValueError, match="unknown overlay 'hat'"):
        overlay.apply(*astronaut, "hat")


@pytest.fixture(scope="module")
def astronaut():
    from face_detector import FaceDetector
    from keypointer import Keypointer
    image = detect.sample_image()
    return image, pipeline.detect_keypoints(image, FaceDetector(), Keypointer())


def test_command_line_overlay_replaces_the_keypoint_drawing(tmp_path):
    with pytest.raises(SystemExit) as done:
        detect.main(["-o", str(tmp_path / "plain.png")])
    assert done.value.code == 0
    with pytest.raises(SystemExit) as done:
        detect.main(["--overlay", "sunglasses", "-o", str(tmp_path / "fun.png")])
    assert done.value.code == 0
    import cv2
    plain, fun = (cv2.imread(str(tmp_path / n)) for n in ("plain.png", "fun.png"))
    assert plain.shape == fun.shape and (plain != fun).any(2).sum() > 500
