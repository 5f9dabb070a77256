"""Known answers for every metric in gantk.metrics (pure functions, no pipeline).

Each expected value is derived by hand in the comment beside it.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import gantk.metrics.prdc as prdc_module
from gantk.metrics import digits_classifier as dc
from gantk.metrics.base import MetricError
from gantk.metrics.fid import fid, frechet_distance, inception_score, kid
from gantk.metrics.jsd import jensen_shannon, jsd_kmeans
from gantk.metrics.modes import class_modes, classifier_mode_metrics, mode_metrics
from gantk.metrics.prdc import knn_radii, prdc

# ---------------------------------------------------------------------------- FID / KID


def test_fid_of_a_set_with_itself_is_zero():
    x = np.random.default_rng(0).normal(size=(500, 8))
    assert abs(fid(x, x)) < 1e-8


def closed_form_diag(mu1, var1, mu2, var2):
    # commuting (diagonal) covariances: Tr(S1 + S2 - 2 (S1 S2)^1/2) = sum (sqrt v1 - sqrt v2)^2
    return float(np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(var1) - np.sqrt(var2)) ** 2))


def test_frechet_distance_matches_closed_form_on_population_statistics():
    mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, -1.0, 2.0])
    v1, v2 = np.array([1.0, 4.0, 0.25]), np.array([4.0, 1.0, 1.0])
    expected = closed_form_diag(mu1, v1, mu2, v2)  # 1 + 4 + 0 + (1 + 1 + 0.25) = 7.25
    assert expected == pytest.approx(7.25)
    assert frechet_distance(mu1, np.diag(v1), mu2, np.diag(v2)) == pytest.approx(7.25, abs=1e-9)
    # a rotated pair: the distance is invariant under the same rotation of both Gaussians
    q, _ = np.linalg.qr(np.random.default_rng(1).normal(size=(3, 3)))
    rotated = frechet_distance(q @ mu1, q @ np.diag(v1) @ q.T, q @ mu2, q @ np.diag(v2) @ q.T)
    assert rotated == pytest.approx(7.25, abs=1e-8)


def _clean_fid_value(mu1, s1, mu2, s2):
    """clean-fid 0.1.35's own frechet_distance (it passes sqrtm(disp=False), deprecated in SciPy
    1.17 and removed in 1.18; where it no longer runs, the reference is unavailable)."""
    import contextlib
    import io
    import warnings

    from cleanfid import fid as cfid

    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            return float(cfid.frechet_distance(mu1, s1, mu2, s2))
        except TypeError as exc:  # SciPy >= 1.18: sqrtm() got an unexpected keyword 'disp'
            pytest.skip(f"clean-fid's frechet_distance does not run with this SciPy: {exc}")


@pytest.mark.parametrize("case", ["full_rank", "rank_deficient", "shifted"])
def test_frechet_distance_equals_clean_fids_value_on_known_features(case):
    rng = np.random.default_rng(7)
    d = 16
    a = rng.normal(size=(400, d)) @ rng.normal(size=(d, d))  # correlated, non-commuting covariances
    b = rng.standard_t(5, size=(300, d)) @ rng.normal(size=(d, d)) + 0.3
    if case == "rank_deficient":  # fewer samples than dimensions: singular covariances
        a, b = a[:10], b[:12]
    if case == "shifted":
        b = b * 3 - 2
    mu1, s1 = np.mean(a, 0), np.cov(a, rowvar=False)
    mu2, s2 = np.mean(b, 0), np.cov(b, rowvar=False)
    ours = frechet_distance(mu1, s1, mu2, s2)
    assert ours == pytest.approx(_clean_fid_value(mu1, s1, mu2, s2), rel=1e-6, abs=1e-6)
    assert fid(a, b) == pytest.approx(ours, rel=1e-12)


def test_fid_does_not_need_scipys_sqrtm(monkeypatch):
    """SciPy 1.18 removed sqrtm's ``disp``: FID must not depend on sqrtm at all."""
    import scipy.linalg

    def removed(*args, **kwargs):
        raise TypeError("sqrtm() got an unexpected keyword argument 'disp'")

    monkeypatch.setattr(scipy.linalg, "sqrtm", removed)
    x = np.random.default_rng(0).normal(size=(200, 4))
    assert fid(x, x + 1.0) == pytest.approx(4.0, abs=1e-9)  # a shift by 1 in each of 4 dims


def test_frechet_distance_refuses_mismatched_statistics():
    with pytest.raises(MetricError, match="mismatched"):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(2), np.eye(2))


def test_fid_between_gaussian_samples_approaches_the_closed_form():
    rng = np.random.default_rng(0)
    mu1, mu2 = np.zeros(4), np.array([1.0, 0.0, 0.5, 0.0])
    v1, v2 = np.array([1.0, 2.0, 0.5, 1.0]), np.array([2.0, 1.0, 0.5, 4.0])
    a = mu1 + np.sqrt(v1) * rng.normal(size=(40_000, 4))
    b = mu2 + np.sqrt(v2) * rng.normal(size=(40_000, 4))
    expected = closed_form_diag(mu1, v1, mu2, v2)  # 1.25 + 0.1716 + 0.1716 + 0 + 1 = 2.5932
    assert fid(a, b) == pytest.approx(expected, abs=0.05)


def test_kid_of_two_constant_sets_is_the_kernel_formula():
    # k(a, b) = (a.b / d + 1)^3. Sets {a}^m and {b}^m in 1-D: every subset is the same, and
    # the unbiased MMD^2 is k(a,a) + k(b,b) - 2 k(a,b) = 1 + 8 - 2 = 7 for a = 0, b = 1.
    zeros, ones = np.zeros((20, 1)), np.ones((20, 1))
    assert kid(zeros, ones, num_subsets=3) == pytest.approx(7.0)
    assert kid(zeros, zeros, num_subsets=3) == pytest.approx(0.0)


def test_kid_is_seeded_and_leaves_the_global_numpy_stream_alone():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(300, 5)), rng.normal(size=(300, 5)) + 0.5
    np.random.seed(123)
    before = np.random.random()
    np.random.seed(123)
    k1 = kid(a, b, num_subsets=5, max_subset_size=100)
    assert np.random.random() == before  # the caller's stream continues where it was
    assert kid(a, b, num_subsets=5, max_subset_size=100) == k1
    same = rng.normal(size=(300, 5))  # same distribution: KID about 0 (unbiased), shifted: ~1
    assert k1 > 0.5 > 0.05 > abs(kid(a, same, num_subsets=5))


# ---------------------------------------------------------------------------- Inception Score


def test_inception_score_known_answers():
    eye = np.eye(10)
    uniform_over_classes = np.repeat(eye, 20, axis=0)  # confident, balanced: IS = 10
    assert inception_score(uniform_over_classes, splits=1)[0] == pytest.approx(10.0)
    collapsed = np.tile(eye[3], (200, 1))  # confident, one class: IS = 1
    assert inception_score(collapsed, splits=1)[0] == pytest.approx(1.0)
    unsure = np.full((200, 10), 0.1)  # no confidence: IS = 1
    assert inception_score(unsure, splits=1)[0] == pytest.approx(1.0)
    # two splits, each balanced over 5 different classes: IS = 5 in each, std 0
    two = np.concatenate([np.repeat(eye[:5], 4, 0), np.repeat(eye[5:], 4, 0)])
    assert inception_score(two, splits=2) == pytest.approx((5.0, 0.0))


def test_inception_score_on_stacked_digits_uses_the_joint_label():
    # per-channel one-hot probabilities covering all 1000 triples once: IS = 1000
    triples = np.array([(i // 100, (i // 10) % 10, i % 10) for i in range(1000)])
    probs = np.eye(10)[triples]  # (1000, 3, 10)
    assert inception_score(probs, splits=1, chunk=128)[0] == pytest.approx(1000.0)


# ---------------------------------------------------------------------------- PRDC

# Real points on a line at 0, 1, 3, 6, 10; fake points at 0.5, 3.5, 20, 21; k = 1.
# real radii (nearest other real): 1, 1, 2, 3, 4; fake radii: 3, 3, 1, 1.
# precision: 0.5 is in real balls 0 and 1, 3.5 in balls 3 and 6, 20 and 21 in none -> 2/4
# density: (2 + 2 + 0 + 0) / (4 * 1) = 1.0
# coverage: reals 0, 1, 3 (nearest fake 0.5 away) and 6 (2.5 < 3) covered, 10 not -> 4/5
# recall: reals 0, 1 (0.5 < 3), 3 (0.5 < 3), 6 (2.5 < 3) inside fake balls, 10 not -> 4/5
REAL = np.array([[0.0, 0], [1, 0], [3, 0], [6, 0], [10, 0]])
FAKE = np.array([[0.5, 0], [3.5, 0], [20, 0], [21, 0]])


def test_knn_radii_by_hand():
    assert knn_radii(REAL, 1).tolist() == pytest.approx([1, 1, 2, 3, 4])
    assert knn_radii(REAL, 2).tolist() == pytest.approx([3, 2, 3, 4, 7])


def test_prdc_on_constructed_points():
    out = prdc(REAL, FAKE, nearest_k=1)
    assert out == pytest.approx({"precision": 0.5, "recall": 0.8, "density": 1.0,
                                 "coverage": 0.8})


def test_prdc_extremes():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 3))
    # identical sets: every ball holds its own point and k-1 neighbours (the k-th sits on the
    # boundary, excluded by the strict <), so density is exactly 1
    assert prdc(x, x.copy(), nearest_k=5) == pytest.approx(
        {"precision": 1.0, "recall": 1.0, "density": 1.0, "coverage": 1.0})
    far = prdc(x, x + 100.0, nearest_k=5)
    assert far == {"precision": 0.0, "recall": 0.0, "density": 0.0, "coverage": 0.0}
    # collapse onto one real point: perfect fidelity, coverage of that point's ball only
    collapsed = prdc(REAL, np.repeat(REAL[:1], 4, 0), nearest_k=1)
    assert collapsed["precision"] == 1.0 and collapsed["coverage"] == pytest.approx(1 / 5)
    assert collapsed["recall"] == 0.0  # fake radii are 0: no real lies strictly inside


def test_prdc_chunking_does_not_change_the_answer(monkeypatch):
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(150, 4)), rng.normal(size=(130, 4)) * 1.3
    whole = prdc(a, b, nearest_k=3)
    monkeypatch.setattr(prdc_module, "_CHUNK_ELEMENTS", 200)  # ~1 row per chunk
    assert prdc(a, b, nearest_k=3) == pytest.approx(whole)


def test_prdc_set_size_cuts():
    from gantk.metrics.prdc import equal_size

    a, b = np.arange(50.0)[:, None], np.arange(20.0)[:, None]
    assert [len(x) for x in equal_size(a, b)] == [20, 20]
    assert [len(x) for x in equal_size(a, b, equal=False, cap=30)] == [30, 20]
    assert [len(x) for x in equal_size(a, b, cap=10)] == [10, 10]


# ---------------------------------------------------------------------------- JSD


def test_jensen_shannon_known_values():
    assert jensen_shannon([1, 0], [0, 1]) == pytest.approx(math.log(2))
    assert jensen_shannon([0.3, 0.7], [3, 7]) == pytest.approx(0.0)
    # p = (1/2, 1/2), q = (1, 0), m = (3/4, 1/4):
    # KL(p||m) = 1/2 ln(4/3), KL(q||m) = ln(4/3)  ->  JSD = 3/4 ln(4/3)
    assert jensen_shannon([0.5, 0.5], [1, 0]) == pytest.approx(0.75 * math.log(4 / 3))


def test_jsd_after_kmeans_two_blobs():
    rng = np.random.default_rng(0)
    blob_a = rng.normal(size=(30, 2)) * 0.1
    blob_b = rng.normal(size=(30, 2)) * 0.1 + 10
    real = np.concatenate([blob_a, blob_b])
    value, k = jsd_kmeans(real, real.copy(), bins=2)
    assert (value, k) == (pytest.approx(0.0), 2)
    # all generated samples in one blob: bins (1/2, 1/2) against (1, 0)
    value, _ = jsd_kmeans(real, blob_a + 0.01, bins=2)
    assert value == pytest.approx(0.75 * math.log(4 / 3))
    assert jsd_kmeans(real, real, bins=100)[1] == 6  # capped at a tenth of the real set


# ---------------------------------------------------------------------------- modes

RING = torch.tensor([[2 * math.cos(i * math.pi / 4), 2 * math.sin(i * math.pi / 4)]
                     for i in range(8)])


def test_modes_perfect_sampler():
    rng = np.random.default_rng(0)
    std = 0.001
    pts = RING.numpy()[rng.integers(0, 8, 16_000)] + std * rng.normal(size=(16_000, 2))
    out = mode_metrics(pts, RING, std)
    assert out["modes_covered"] == 8 and out["modes_total"] == 8
    # within 3 std of the centre in 2-D: 1 - exp(-9/2) = 0.98889
    assert out["high_quality"] == pytest.approx(1 - math.exp(-4.5), abs=0.005)
    assert out["reverse_kl"] < 0.005


def test_modes_collapsed_and_uniform_over_modes():
    collapsed = mode_metrics(np.repeat(RING[:1].numpy(), 100, 0), RING, 0.001)
    assert collapsed == pytest.approx({"modes_covered": 1, "high_quality": 1.0,
                                       "reverse_kl": math.log(8), "modes_total": 8})
    uniform = mode_metrics(np.repeat(RING.numpy(), 10, 0), RING, 0.001)
    assert uniform == pytest.approx({"modes_covered": 8, "high_quality": 1.0,
                                     "reverse_kl": 0.0, "modes_total": 8})


def test_modes_uniform_on_the_plane_and_min_count():
    grid = torch.tensor([[2.0 * i, 2.0 * j] for i in range(-2, 3) for j in range(-2, 3)])
    rng = np.random.default_rng(0)
    pts = rng.uniform(-5, 5, size=(40_000, 2))
    out = mode_metrics(pts, grid, 0.1)
    # 25 discs of radius 0.3 in a 10 x 10 square: 25 * pi * 0.09 / 100 = 0.0707
    assert out["high_quality"] == pytest.approx(25 * math.pi * 0.09 / 100, abs=0.006)
    assert out["modes_covered"] == 25
    none = mode_metrics(pts[:10] + 100, grid, 0.1)
    assert none["high_quality"] == 0 and none["modes_covered"] == 0
    assert math.isnan(none["reverse_kl"])  # empty histogram: undefined, reported as NaN
    # 5 hits on mode 0 and 1 on mode 1: with min_count=2 only mode 0 is covered
    pts = np.concatenate([np.repeat(grid[:1].numpy(), 5, 0), grid[1:2].numpy()])
    assert mode_metrics(pts, grid, 0.1, min_count=2)["modes_covered"] == 1
    assert mode_metrics(pts, grid, 0.1, threshold=1e-9)["high_quality"] == 1.0  # exact hits
    assert mode_metrics(pts + 0.25, grid, 0.1, threshold=2)["high_quality"] == 0.0


def test_stacked_digit_modes():
    triples = np.array([(i // 100, (i // 10) % 10, i % 10) for i in range(1000)])
    probs = np.eye(10)[triples]
    ids, total = class_modes(probs)
    assert total == 1000 and ids[314] == 314
    out = classifier_mode_metrics(probs)
    assert out == pytest.approx({"modes_covered": 1000, "reverse_kl": 0.0, "modes_total": 1000})
    collapsed = classifier_mode_metrics(np.repeat(probs[:1], 50, 0))
    assert collapsed["modes_covered"] == 1
    assert collapsed["reverse_kl"] == pytest.approx(math.log(1000))


# ---------------------------------------------------------------------------- digits classifier

ACCURACY_FLOOR = 0.97


def test_shipped_classifier_accuracy_is_recorded_and_above_the_floor():
    meta = dc.read_meta()
    x, y = dc.load_digits_arrays()
    _, test = dc.heldout_split(labels=y)
    clf = dc.load_digits_classifier()
    images = torch.from_numpy(x[test])
    pred = clf.predict(images)[:, 0].numpy()
    acc = float(np.mean(pred == y[test]))
    assert acc == pytest.approx(meta["heldout_accuracy"], abs=1e-6)
    assert acc >= ACCURACY_FLOOR
    # the data module's upsampled digits (bilinear to 16 and 32 px) are read just as well
    for size in (16, 32):
        up = F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False)
        assert float(np.mean(clf.predict(up)[:, 0].numpy() == y[test])) >= ACCURACY_FLOOR


def test_classifier_reads_stacked_digits_per_channel():
    x, y = dc.load_digits_arrays()
    idx = np.array([[0, 1, 2], [10, 11, 12], [5, 5, 5]])
    stacked = torch.from_numpy(np.concatenate([x[idx[:, c]] for c in range(3)], axis=1))
    clf = dc.load_digits_classifier()
    feats, logits = clf.run(stacked)
    assert feats.shape == (3, 3 * dc.FEATURE_DIM) and logits.shape == (3, 3, 10)
    assert clf.predict(stacked).tolist() == y[idx].tolist()
    with pytest.raises(ValueError):
        clf.run(torch.zeros(2, 2, 8, 8))


# ---------------------------------------------------------------------------- confidence


def test_confidence_known_values_and_stacked_channels():
    from gantk.metrics.confidence import confidence

    flat = np.array([[0.95, 0.05], [0.6, 0.4], [0.9, 0.1], [0.2, 0.8]])
    assert confidence(flat) == pytest.approx({"confident_share": 0.5, "mean_confidence": 0.8125})
    assert confidence(flat, threshold=0.8)["confident_share"] == 0.75
    # stacked: a sample is as sure as its least sure channel
    stacked = np.stack([flat, flat[::-1]], axis=1)  # channel 1 reversed
    assert confidence(stacked)["mean_confidence"] == pytest.approx((0.8 + 0.6 + 0.6 + 0.8) / 4)
    assert confidence(stacked)["confident_share"] == 0.0
    with pytest.raises(MetricError):
        confidence(np.zeros((0, 10)))


def test_confidence_separates_real_digits_from_overlaid_pairs():
    from gantk.metrics.base import FeatureSet
    from gantk.metrics.confidence import Confidence

    x, y = dc.load_digits_arrays()
    clf = dc.load_digits_classifier()
    real = torch.from_numpy(x[:400])
    first = torch.from_numpy(x[:400][y[:400] == 1][:100])
    other = torch.from_numpy(x[:400][y[:400] == 8][:100])
    n = min(len(first), len(other))
    blend = 0.5 * (first[:n] + other[:n])  # a 1 drawn over an 8: no single class fits
    probs = {name: clf.run(imgs)[1].softmax(-1).numpy() for name, imgs in
             (("real", real), ("blend", blend))}
    metric = Confidence()
    out = metric(FeatureSet(digit_probs=probs["real"]), FeatureSet(digit_probs=probs["blend"]),
                 info=None)
    assert out["confident_share_real"] >= 0.9
    assert out["confident_share"] <= out["confident_share_real"] - 0.3
    assert out["mean_confidence"] < 0.9
