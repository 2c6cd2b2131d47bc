"""NME, failure rate and AUC on constructed predictions with known answers."""
import numpy as np
import pytest

from metrics import heatmap_spread, nme_per_face, summarize


def faces(n=5, seed=0):
    return np.random.default_rng(seed).uniform(0, 200, (n, 68, 2))


def test_perfect_predictions_have_zero_error():
    target = faces()
    np.testing.assert_allclose(nme_per_face(target, target), 0.0)
    assert summarize(nme_per_face(target, target))["auc"] > 0.99


def test_shift_by_d_gives_d_over_the_outer_eye_distance():
    target = faces()
    shift = np.array([3.0, 4.0])                       # |d| = 5 px
    eyes = np.linalg.norm(target[:, 36] - target[:, 45], axis=1)
    np.testing.assert_allclose(nme_per_face(target + shift, target), 5.0 / eyes)


def test_failure_rate_and_mean():
    summary = summarize([0.02, 0.05, 0.2, 0.5])
    assert summary["failure_rate"] == 0.5
    assert abs(summary["nme"] - 0.1925) < 1e-12
    assert summary["faces"] == 4


def test_auc_of_a_constant_error_is_the_area_after_it():
    assert abs(summarize([0.05] * 10)["auc"] - 0.5) < 1e-2
    assert summarize([0.5] * 3)["auc"] == 0.0


def test_heatmap_spread_of_a_point_a_pair_and_a_uniform_map():
    point, pair, uniform = np.zeros((8, 8)), np.zeros((8, 8)), np.full((8, 8), 1 / 64)
    point[2, 5] = 1.0
    pair[3, 1] = pair[3, 7] = 0.5                      # 3 cells either side of the mean
    spread = heatmap_spread(np.stack([point, pair, uniform]))
    np.testing.assert_allclose(spread, [0.0, 3.0, np.sqrt(2 * (64 - 1) / 12)], atol=1e-9)


def test_a_missed_face_is_a_failure_entering_the_mean_at_the_threshold():
    from evaluate import score
    results = [{"nme": 0.02}, {"nme": 0.04}, {"nme": None}, {"nme": 0.12}]
    summary = score(results)
    assert summary["nme"] == pytest.approx((0.02 + 0.04 + 0.10 + 0.12) / 4)
    assert summary["nme_detected"] == pytest.approx(0.06)
    assert summary["failure_rate"] == 0.5 and summary["missed"] == 1 and summary["detection_rate"] == 0.75
    # CED: 1/4 of the faces from 0.02, 2/4 from 0.04; the missed one never: (0.25 * 0.02 + 0.5 * 0.06) / 0.1
    assert summary["auc"] == pytest.approx(0.35, abs=0.005)


def test_the_paired_interval_holds_a_constant_difference_and_widens_with_noise():
    from benchmarks.paired import paired_interval
    a = np.linspace(0.02, 0.08, 200)
    assert paired_interval(a, a - 0.003) == pytest.approx((-0.003, -0.003, -0.003))
    noise = np.random.default_rng(1).normal(0, 0.004, 200)
    mean, low, high = paired_interval(a, a + noise)
    assert low < mean < high and low < 0 < high                      # no difference: the interval holds 0
    assert high - low == pytest.approx(2 * 1.96 * 0.004 / np.sqrt(200), rel=0.15)
