"""Geometry of the keypoint-aware transforms: round trips and known values."""
import random
import numpy as np
import pytest
import torch

import data_load as dl
import geometry
import markup
import train_data


def synthetic(h=120, w=100, seed=0):
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
    keypoints = rng.uniform([10, 10], [w - 10, h - 10], (68, 2)).astype(np.float32)
    return image, keypoints


def test_flip_permutation_is_an_involution_and_swaps_eyes():
    perm = markup.FLIP_PERMUTATION
    assert sorted(perm) == list(range(68))
    assert (perm[perm] == np.arange(68)).all()
    assert perm[36] == 45 and perm[45] == 36          # outer eye corners
    assert list(perm[36:42]) == [45, 44, 43, 42, 47, 46]
    assert perm[30] == 30 and perm[8] == 8            # nose tip and chin stay


def test_flip_twice_is_identity():
    image, kp = synthetic()
    once = dl.hflip(image, kp)
    twice = dl.hflip(*once)
    assert torch.equal(twice[0], dl.as_image(image))
    np.testing.assert_allclose(np.asarray(twice[1]), kp, atol=1e-5)
    assert not np.allclose(np.asarray(once[1]), kp)


def test_flip_mirrors_x_and_turns_the_right_eye_corner_into_the_left():
    image, kp = synthetic(w=100)
    _, flipped = dl.hflip(image, kp)
    flipped = np.asarray(flipped)
    # the flipped point 45 is the mirror image of the original point 36
    np.testing.assert_allclose(flipped[45], [100 - kp[36, 0], kp[36, 1]], atol=1e-5)
    np.testing.assert_allclose(flipped[36], [100 - kp[45, 0], kp[45, 1]], atol=1e-5)


def dot_centre(image):
    """Centre of the bright pixels, in the keypoint convention (pixel i spans [i, i+1))."""
    ys, xs = np.nonzero(np.asarray(image)[0] > 60)
    return np.array([xs.mean(), ys.mean()]) + 0.5


@pytest.mark.parametrize("transform", [lambda i, k: dl.hflip(i, k),
                                       dl.RandomRotation(degrees=(33.0, 33.0)),
                                       dl.Rescale(150),
                                       lambda i, k: dl.FaceCrop(64, scale=1.0)(i, k)])
def test_keypoint_stays_on_its_pixel_through_every_geometric_transform(transform):
    """Flip, rotation, resize and crop agree on one coordinate convention, so a label
    never drifts from its content (a mixed convention would shift flipped labels by 1 px)."""
    image = np.zeros((100, 100), np.uint8)
    image[39:42, 59:62] = 255                          # a 3x3 dot on pixel (60, 40)
    kp = np.tile(dot_centre(dl.as_image(image)), (68, 1)).astype(np.float32)
    kp[:2] = [[20.0, 20.0], [80.0, 80.0]]              # give FaceCrop a 60 px face box
    out, out_kp = transform(image, kp)
    np.testing.assert_allclose(np.asarray(out_kp)[30], dot_centre(out), atol=0.35)


def test_affine_warp_moves_a_dot_with_its_keypoint():
    image = np.zeros((100, 100), np.uint8)
    image[39:42, 59:62] = 255
    kp = np.tile(dot_centre(dl.as_image(image)), (68, 1)).astype(np.float32)
    warp = dl.RandomAffine(degrees=(-25.0, -25.0), translate=(0.1, 0.1), scale=(1.2, 1.2))
    for _ in range(5):                                 # random shifts, same geometry each time
        out, out_kp = warp(image, kp)
        np.testing.assert_allclose(np.asarray(out_kp)[0], dot_centre(out), atol=0.35)


def test_face_crop_replays_a_measured_framing():
    image, kp = synthetic(300, 300)
    kp = kp * 0.5 + 60                                 # keypoint box well inside the image
    lo, hi = kp.min(0), kp.max(0)
    side = (hi - lo).max()
    crop = dl.FaceCrop(100, framings=[(0.1, -0.05, 2.0)])
    x, y, s = crop.square(kp)
    assert s == pytest.approx(2.0 * side)
    np.testing.assert_allclose([x + s / 2, y + s / 2], (lo + hi) / 2 + np.array([0.1, -0.05]) * side, atol=1e-4)
    _, in_crop = crop(image, kp)
    np.testing.assert_allclose(geometry.uncrop_points(np.asarray(in_crop), (x, y, s), 100), kp, atol=1e-3)


def test_random_flip_probability_zero_and_one():
    image, kp = synthetic()
    _, kept = dl.RandomHorizontalFlip(p=0.0)(image, kp)
    _, flipped = dl.RandomHorizontalFlip(p=1.0)(image, kp)
    np.testing.assert_allclose(np.asarray(kept), kp)
    np.testing.assert_allclose(np.asarray(flipped), np.asarray(dl.hflip(image, kp)[1]))


@pytest.mark.parametrize("angle", [-30.0, 17.0, 90.0])
def test_rotated_keypoint_lands_on_the_marked_pixel(angle):
    h, w = 101, 101
    image = np.zeros((h, w), np.uint8)
    mark = np.array([70.0, 30.0], np.float32)
    image[29:32, 69:72] = 255                          # a 3x3 dot centred on the mark
    kp = np.repeat(mark[None], 68, axis=0)
    rotate = dl.RandomRotation(degrees=(angle, angle))
    out_image, out_kp = rotate(image, kp)
    ys, xs = np.nonzero(out_image[0].numpy() > 60)
    centroid = np.array([xs.mean(), ys.mean()])
    np.testing.assert_allclose(np.asarray(out_kp)[0], centroid, atol=1.0)


def test_crop_then_map_back_returns_original_coordinates():
    image, kp = synthetic(200, 160)
    square = geometry.face_square(kp)
    crop = dl.crop_square(image, square, 96)
    assert crop.shape == (3, 96, 96)
    _, in_crop = dl.FaceCrop(96)(image, kp)
    np.testing.assert_allclose(geometry.uncrop_points(np.asarray(in_crop), square, 96), kp, atol=1e-3)


def test_crop_outside_the_image_is_zero_filled_not_wrapped():
    image = np.full((50, 50), 200, np.uint8)
    crop = dl.crop_square(image, (-50, -50, 100), 100)[0].numpy()
    assert crop[:45, :45].max() == 0                   # the part above-left of the image
    assert crop[55:, 55:].min() == 200                 # the image itself


def test_random_crop_keeps_an_image_of_exactly_the_crop_size():
    image, kp = synthetic(64, 64)
    out, out_kp = dl.RandomCrop(64)(image, kp)
    assert out.shape[-2:] == (64, 64)
    np.testing.assert_allclose(np.asarray(out_kp), kp)


def test_random_crop_shifts_keypoints_by_the_crop_offset():
    image = np.zeros((80, 90), np.uint8)
    image[40, 50] = 255
    kp = np.tile([[50.0, 40.0]], (68, 1))
    out, out_kp = dl.RandomCrop(60)(image, kp)
    y, x = np.argwhere(out[0].numpy() == 255)[0]
    np.testing.assert_allclose(np.asarray(out_kp)[0], [x, y])


def test_rescale_scales_keypoints_with_the_image():
    image, kp = synthetic(200, 100)
    out, out_kp = dl.Rescale(50)(image, kp)            # shorter side 100 -> 50
    assert tuple(out.shape[-2:]) == (100, 50)
    np.testing.assert_allclose(np.asarray(out_kp), kp * 0.5, atol=1e-4)


def test_normalize_and_denormalize_are_inverse_and_image_is_unit_gray():
    image, kp = synthetic(96, 96)
    out, norm = dl.Normalize()(image, kp)
    assert out.shape == (1, 96, 96) and out.dtype == torch.float32
    assert 0.0 <= out.min() and out.max() <= 1.0
    assert np.abs(norm).max() <= 1.0
    np.testing.assert_allclose(geometry.denormalize_keypoints(norm, 96), kp, atol=1e-4)
    np.testing.assert_allclose(geometry.normalize_keypoints(np.array([[0.0, 96.0]]), 96), [[-1.0, 1.0]])


def test_color_jitter_changes_pixels_not_keypoints():
    image, kp = synthetic()
    out, out_kp = dl.ColorJitter(brightness=(1.5, 1.5))(image, kp)
    np.testing.assert_allclose(np.asarray(out_kp), kp)
    assert not torch.equal(out, dl.as_image(image))


def test_random_occlusion_hides_one_rectangle_near_a_keypoint_and_keeps_the_keypoints():
    """A flat occlusion changes one axis-aligned block of pixels, inside the crop and touching
    the neighbourhood of a keypoint; the keypoints are returned unchanged; p=0 is the identity."""
    image = np.random.default_rng(1).integers(1, 255, (112, 112), dtype=np.uint8)
    kp = np.random.default_rng(2).uniform(30, 80, (68, 2)).astype(np.float32)
    same, same_kp = dl.RandomOcclusion(p=0.0)(image, kp)
    assert same is image and same_kp is kp
    random.seed(3)
    occlusion = dl.RandomOcclusion(p=1.0, sides=(0.2, 0.3))
    for _ in range(20):
        out, out_kp = occlusion(dl.as_image(image), kp)
        np.testing.assert_array_equal(np.asarray(out_kp), kp)
        changed = np.argwhere(dl._as_array(out) != image)
        assert len(changed)
        (y0, x0), (y1, x1) = changed.min(0), changed.max(0)
        assert 1 <= y1 - y0 + 1 <= 34 and 1 <= x1 - x0 + 1 <= 34       # at most 0.3 of 112 px a side
        near = (kp[:, 0] >= x0 - 34) & (kp[:, 0] <= x1 + 34) & (kp[:, 1] >= y0 - 34) & (kp[:, 1] <= y1 + 34)
        assert near.any()


def test_cover_part_hides_the_padded_box_of_one_part_with_the_faces_mean_and_moves_no_point():
    image = np.tile(np.arange(100, dtype=np.uint8), (100, 1))         # gray rising to the right
    kp = np.random.default_rng(4).uniform(20, 80, (68, 2)).astype(np.float32)
    kp[markup.RIGHT_EYE_OUTER], kp[markup.LEFT_EYE_OUTER] = (30, 40), (70, 40)    # eye distance 40 px: pad 6 px
    out, out_kp = dl.CoverPart("nose")(dl.as_image(image), kp)
    np.testing.assert_array_equal(np.asarray(out_kp), kp)
    nose = kp[markup.COVERED_PARTS["nose"]]
    changed = np.argwhere(dl._as_array(out) != image)
    (y0, x0), (y1, x1) = changed.min(0), changed.max(0)
    assert y0 == np.floor(nose[:, 1].min() - 6) and y1 + 1 == np.ceil(nose[:, 1].max() + 6)
    lo, hi = kp.min(0).astype(int), kp.max(0).astype(int)
    assert dl._as_array(out)[y0, x0 + 1] == round(image[lo[1]:hi[1], lo[0]:hi[0]].mean())
    with pytest.raises(ValueError, match="not one of"):
        dl.CoverPart("ear")


def test_train_and_eval_transforms_give_model_ready_tensors(face_sample):
    image, kp = face_sample
    import train
    for tf in (train_data.make_transform(train.TrainConfig(input_size=96)), dl.eval_transform(96)):
        x, y = tf(image, kp)
        assert x.shape == (1, 96, 96) and x.dtype == torch.float32
        assert y.shape == (68, 2) and y.abs().max() < 1.0
        assert type(x) is torch.Tensor
