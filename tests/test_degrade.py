"""Image-quality degradations: shapes, known values, and keypoints left in place."""
import numpy as np
import pytest
import torch

import data_load as dl
import degrade


def mid_gray(shape=(64, 64, 3), value=128):
    return np.full(shape, value, np.uint8)


@pytest.mark.parametrize("name,level", [("blur", 1.5), ("noise", 8), ("jpeg", 20), ("lowres", 0.5), ("gamma", 2),
                                        ("backlight", 3), ("uneven", 2), ("cast", 0.4)])
@pytest.mark.parametrize("shape", [(40, 56), (40, 56, 3)])
def test_every_degradation_keeps_shape_and_type(name, level, shape):
    image = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    out = degrade.apply(image, name, level)
    assert out.shape == image.shape and out.dtype == np.uint8


def test_gamma_known_values():
    out = degrade.gamma(np.array([[0, 128, 255]], np.uint8), 2.0)
    assert out.tolist() == [[0, 64, 255]]            # 255 * (128 / 255) ** 2 = 64.25


def test_lighting_falls_where_it_should():
    flat = mid_gray((60, 80))
    back = degrade.backlight(flat, 3).astype(int)
    assert 60 <= back[30, 40] <= 68 and back[0, 0] == back[59, 79] == 255   # centre a stop down, corners clipped
    side = degrade.uneven(flat, 2).astype(int)
    assert (np.diff(side[0]) >= 0).all() and side[0, 0] < 128 - 40 and side[0, -1] > 128 + 80
    assert np.array_equal(side[0], side[-1])                               # the same down every column
    warm = degrade.colour_cast(mid_gray(), 0.5)[0, 0].tolist()
    assert warm == [192, 128, 64] and np.array_equal(degrade.colour_cast(flat, 0.5), flat)


def test_blur_and_jpeg_leave_a_flat_image_flat():
    flat = mid_gray()
    assert np.array_equal(degrade.blur(flat, 2.0), flat)
    assert np.abs(degrade.jpeg(flat, 10).astype(int) - 128).max() <= 1


def test_low_resolution_erases_detail_finer_than_its_pixels():
    checker = (np.indices((64, 64)).sum(0) % 2 * 255).astype(np.uint8)
    out = degrade.low_resolution(checker, 0.5)
    assert np.abs(out.astype(int) - 128).max() <= 1     # each 2x2 block averages to mid-gray


def test_noise_has_the_requested_spread_and_is_seeded():
    out = degrade.noise(mid_gray((200, 200)), 10.0, seed=3)
    assert abs(out.astype(float).std() - 10.0) < 0.3 and abs(out.mean() - 128) < 0.3
    assert np.array_equal(out, degrade.noise(mid_gray((200, 200)), 10.0, seed=3))


def test_parse_accepts_name_level_and_rejects_the_rest():
    assert degrade.parse("blur=1.5") == ("blur", 1.5)
    for bad in ["blur", "fog=2", "jpeg=high"]:
        with pytest.raises(ValueError, match="degradation"):
            degrade.parse(bad)


def test_random_degrade_changes_pixels_not_keypoints():
    image = np.random.default_rng(1).integers(0, 256, (96, 96, 3), dtype=np.uint8)
    kp = np.random.default_rng(2).uniform(10, 86, (68, 2)).astype(np.float32)
    same, same_kp = degrade.RandomDegrade(p=0.0)(image, kp)
    assert same is image and same_kp is kp
    out, out_kp = degrade.RandomDegrade(p=1.0)(dl.as_image(image), kp)
    assert out.shape == dl.as_image(image).shape and not torch.equal(out, dl.as_image(image))
    np.testing.assert_array_equal(np.asarray(out_kp), kp)


def test_evaluation_degrades_the_raw_image_before_the_pipeline(data_dir):
    """The same faces, scored clean and blurred: the blur reaches the net (the error moves)
    and a level-0 gamma curve is the identity."""
    from evaluate import cnn_pipeline, run_on_test_set
    from keypointer import Keypointer
    from conftest import SHIPPED_MODEL
    find_boxes, landmarks = cnn_pipeline(Keypointer(SHIPPED_MODEL), "gt")
    clean = run_on_test_set(data_dir, find_boxes, landmarks, subset=8)
    identity = run_on_test_set(data_dir, find_boxes, landmarks, subset=8, degradation=("gamma", 1.0))
    blurred = run_on_test_set(data_dir, find_boxes, landmarks, subset=8, degradation=("blur", 3.0))
    assert [r["nme"] for r in identity] == [r["nme"] for r in clean]
    assert all(b["nme"] != c["nme"] for b, c in zip(blurred, clean))


def test_robustness_runs_the_detector_once_per_image_for_all_checkpoints(data_dir, monkeypatch, tmp_path):
    import shutil
    import benchmarks.robustness as rb
    from conftest import SHIPPED_MODEL
    copy = str(tmp_path / "copy.pt")
    shutil.copy(SHIPPED_MODEL, copy)
    calls = []
    real = rb.FaceDetector

    def counting():
        detector = real()
        return lambda gray: calls.append(1) or detector(gray)
    monkeypatch.setattr(rb, "FaceDetector", counting)
    table = rb.robustness(data_dir, [SHIPPED_MODEL, copy], ["noise=10"], subset=5)
    assert list(table) == ["clean", "noise=10"] and len(calls) == 10     # 5 images x 2 conditions
    assert table["clean"][SHIPPED_MODEL] == table["clean"][copy]          # same weights, same boxes
    assert table["clean"][SHIPPED_MODEL]["faces"] == 5
    assert table["noise=10"][SHIPPED_MODEL]["nme"] != table["clean"][SHIPPED_MODEL]["nme"]
