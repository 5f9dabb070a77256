"""KID with torch (gantk.metrics.kid) against clean-fid's own ``kernel_distance``: the same subsets
drawn, the same value on the same features, by both of gantk's routes."""

from __future__ import annotations

import numpy as np
import pytest
from cleanfid import fid as cfid

from gantk.metrics.base import MetricError
from gantk.metrics.fid import KID, KIDParams
from gantk.metrics.fid import kid as kid_from_fid
from gantk.metrics.kid import kid, routes, subset_indices


def _features(n_real, n_fake, d, seed=0):
    rng = np.random.default_rng(seed)
    mix = rng.normal(size=(d, d))
    real = rng.normal(size=(n_real, d)) @ mix  # correlated
    fake = rng.standard_t(5, size=(n_fake, d)) @ mix * 1.2 + 0.3
    return real, fake


def _clean_fid(real, fake, num_subsets, max_subset_size, seed):
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        return cfid.kernel_distance(real, fake, num_subsets=num_subsets,
                                    max_subset_size=max_subset_size)
    finally:
        np.random.set_state(state)


def test_the_subsets_are_the_ones_clean_fid_draws(monkeypatch):
    real, fake = _features(70, 50, 3)
    drawn = []
    choice = np.random.choice

    def recording(n, size, replace=True):
        out = choice(n, size, replace=replace)
        drawn.append((n, out.copy()))
        return out

    monkeypatch.setattr(np.random, "choice", recording)
    _clean_fid(real, fake, 6, 40, seed=5)
    monkeypatch.undo()
    fake_idx, real_idx = subset_indices(70, 50, 6, 40, seed=5)
    assert len(drawn) == 12 and fake_idx.shape == real_idx.shape == (6, 40)
    for s in range(6):  # clean-fid: feats2 (generated) first, then feats1 (real), per subset
        assert drawn[2 * s][0] == 50 and np.array_equal(drawn[2 * s][1], fake_idx[s])
        assert drawn[2 * s + 1][0] == 70 and np.array_equal(drawn[2 * s + 1][1], real_idx[s])


@pytest.mark.parametrize("how", ["full", "subsets"])
@pytest.mark.parametrize("n_real,n_fake,d,num_subsets,max_subset_size,seed", [
    (300, 240, 16, 10, 100, 0),   # subsets smaller than either set
    (50, 80, 5, 7, 1000, 3),      # m = 50: the smaller set whole, in a new order each time
    (120, 120, 64, 4, 119, 11),   # 64-d, as the digits classifier's features
    (40, 30, 1, 5, 30, 2),        # 1-d
])
def test_kid_equals_clean_fids_kernel_distance(how, n_real, n_fake, d, num_subsets,
                                               max_subset_size, seed):
    real, fake = _features(n_real, n_fake, d, seed)
    expected = _clean_fid(real, fake, num_subsets, max_subset_size, seed)
    ours = kid(real, fake, num_subsets=num_subsets, max_subset_size=max_subset_size, seed=seed,
               how=how)
    assert ours == pytest.approx(expected, rel=1e-6)
    assert abs(ours - expected) <= 1e-9 * max(1.0, abs(expected))  # float64 round-off in fact


def test_kid_same_distribution_is_near_zero_and_shift_is_not():
    rng = np.random.default_rng(0)
    a, b, c = (rng.normal(size=(400, 4)) for _ in range(3))
    assert abs(kid(a, b, num_subsets=20, max_subset_size=200)) < 0.02
    assert kid(a, c + 1.0, num_subsets=20, max_subset_size=200) > 0.5


def test_kid_known_answer_and_tiled_full_route(monkeypatch):
    # k(a, b) = (a.b / d + 1)^3 on {0}^m and {1}^m in 1-D: 1 + 8 - 2 * 1 = 7, whatever the subsets
    zeros, ones = np.zeros((20, 1)), np.ones((20, 1))
    import gantk.metrics.kid as kid_module

    monkeypatch.setattr(kid_module, "TILE", 7)  # many row tiles in the full route
    for how in ("full", "subsets"):
        assert kid(zeros, ones, num_subsets=3, how=how) == pytest.approx(7.0, rel=1e-12)
    real, fake = _features(60, 45, 6, 4)
    assert kid(real, fake, num_subsets=5, max_subset_size=30, seed=1, how="full") == \
        pytest.approx(_clean_fid(real, fake, 5, 30, 1), rel=1e-9)


def test_each_block_takes_the_cheaper_route():
    full = {"fake-fake": "full", "real-real": "full", "fake-real": "full"}
    assert routes(5000, 5000, 100, 1000, 64) == full
    assert routes(5000, 5000, 100, 1000, 2048) == full
    assert set(routes(50_000, 50_000, 100, 1000, 64).values()) == {"subsets"}
    assert set(routes(50_000, 50_000, 100, 1000, 2048).values()) == {"subsets"}
    # 10,000 generated against the 1,797 digits: only the generated pairs take the subset loop
    assert routes(1797, 10_000, 100, 1000, 64) == {**full, "fake-fake": "subsets"}


def test_kid_with_mixed_routes_equals_clean_fid():
    real, fake = _features(40, 300, 4, 9)
    assert routes(40, 300, 10, 40, 4) == {"fake-fake": "subsets", "real-real": "full",
                                          "fake-real": "full"}
    assert kid(real, fake, num_subsets=10, max_subset_size=1000, seed=9) == \
        pytest.approx(_clean_fid(real, fake, 10, 1000, 9), rel=1e-9)


def test_kid_refuses_what_it_cannot_score():
    with pytest.raises(MetricError, match="at least 2"):
        kid(np.zeros((1, 3)), np.zeros((5, 3)))
    with pytest.raises(MetricError, match="feature sizes differ"):
        kid(np.zeros((5, 3)), np.zeros((5, 4)))


def test_the_metric_object_and_the_old_import_path_use_it():
    from gantk.metrics.base import FeatureSet

    real, fake = _features(90, 90, 8, 6)
    assert kid_from_fid is kid
    out = KID(KIDParams(num_subsets=4, max_subset_size=50, seed=2))(
        FeatureSet(embedding=real), FeatureSet(embedding=fake), None)
    assert out["kid"] == pytest.approx(_clean_fid(real, fake, 4, 50, 2), rel=1e-9)


# ---------------------------------------------------------------------------- progress


class _Terminal:
    """A stream that says it is a terminal and keeps what is written."""

    def __init__(self, tty=True):
        self.tty, self.lines = tty, []

    def isatty(self):
        return self.tty

    def write(self, text):
        self.lines.append(text)

    def flush(self):
        pass


def test_heartbeat_writes_a_line_every_few_seconds_on_a_terminal_only():
    import time

    from gantk.metrics.heartbeat import Heartbeat

    term, pipe = _Terminal(), _Terminal(tty=False)
    for stream in (term, pipe):
        with Heartbeat(True, every=0.02, stream=stream) as beat:
            beat.stage("scoring kid (2/6)")
            time.sleep(0.2)
    assert len(term.lines) >= 2 and all(
        line.startswith("evaluate: scoring kid (2/6), ") and line.endswith(" s\n")
        for line in term.lines)
    assert pipe.lines == []
    quiet = _Terminal()
    with Heartbeat(False, every=0.02, stream=quiet) as beat:  # --no-progress
        beat.stage("scoring kid")
        time.sleep(0.1)
    assert quiet.lines == []


def test_evaluate_prints_the_metric_being_scored(monkeypatch):
    import math
    import sys
    import time

    import torch

    import gantk.metrics.fid as fid_module
    import gantk.metrics.heartbeat as heartbeat
    from gantk.base.interfaces import DataInfo
    from gantk.metrics.evaluate import evaluate

    class Pipe:
        ring = torch.tensor([[math.cos(i), math.sin(i)] for i in range(8)])
        data_info = DataInfo(shape=(2,), kind="points", modes=ring, mode_std=0.01)
        device = torch.device("cpu")

        def real_data(self):
            return self.ring.repeat(8, 1), None

        def sample_batches(self, n, *, batch_size=500, with_=None):
            yield self.ring.repeat(8, 1)[:n] + 0.01

    real_kid = fid_module.kid

    def slow_kid(*args, **kwargs):
        time.sleep(0.3)
        return real_kid(*args, **kwargs)

    term = _Terminal()
    monkeypatch.setattr(heartbeat, "EVERY", 0.05)
    monkeypatch.setattr(fid_module, "kid", slow_kid)
    monkeypatch.setattr(sys, "stderr", term)
    out = evaluate(Pipe(), ["prdc", "kid"], n=64, options={"kid": {"num_subsets": 2}},
                   progress=True, cache=False)
    monkeypatch.undo()
    assert math.isfinite(out["kid"])
    assert any(line.startswith("evaluate: scoring kid (2/2), ") for line in term.lines)
