"""AdvLatGAN plugin: the I-FGSM search on a linear toy G and D where z* is known in closed form,
the Eq. 8 pair search step against its hand-derived sign, the MSGAN term on hand-computed pairs,
which networks the terms' gradients reach, and the components inside a pipeline."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from gantk import IncompatibleStackError, Pipeline
from gantk.base.interfaces import Backbone, Discriminator, StepContext
from gantk_plugins.advlat import (AdvLatDivParams, AdvLatQuaParams, AdvLatZParams, LatentSearch,
                                  ModeSeeking, MSGANParams, distance_ratio, hard_pair_search,
                                  ifgsm, mode_seeking_term, search_state)
from gantk_plugins.losses import _PairLoss, ns_d_loss, ns_g_loss

# ----------------------------------------------------------------------------- toy nets


class LinearG(nn.Module):
    def __init__(self, A: torch.Tensor) -> None:
        super().__init__()
        self.A = nn.Parameter(A.clone())

    def forward(self, z, y=None):
        return z @ self.A.T


class LinearD(Discriminator):
    def __init__(self, w: torch.Tensor) -> None:
        super().__init__()
        self.w = nn.Parameter(w.clone())
        self.feature_dim = w.numel()

    def features(self, x, y=None):
        return x

    def head(self, h, y=None):
        return h @ self.w


class ToyBackbone(Backbone):
    def __init__(self, A, w, prior="normal") -> None:
        super().__init__()
        self.latent_dim, self.image_shape, self.prior = A.shape[1], (A.shape[0],), prior
        self.generator, self.discriminator = LinearG(A), LinearD(w)


A = torch.tensor([[1.0, -2.0, 0.0], [0.5, 1.0, 0.0]])  # third latent coordinate unused
W = torch.tensor([1.0, 3.0])                             # A^T w = (2.5, 1.0, 0.0)


def toy_ctx(phase="sample", prior="normal", n=5):
    bb = ToyBackbone(A, W, prior)
    torch.manual_seed(0)
    z = torch.randn(n, 3) * (0.5 if prior == "uniform" else 1.0)
    return bb, StepContext(phase=phase, backbone=bb, loss=_PairLoss(ns_d_loss, ns_g_loss, "ns"),
                           step=0, z=z)


def test_ifgsm_linear_closed_form():
    """L_G = softplus(-w^T A z) decreases along A^T w, so z* = z0 + n*eps*sign(A^T w) exactly."""
    bb, ctx = toy_ctx()
    t = LatentSearch(params=AdvLatZParams(steps=7, step_size=0.01), phases=frozenset({"sample"}))
    with torch.no_grad():  # as at sampling: the search must enable grad itself
        z_star = t(ctx.z, ctx)
    expect = ctx.z + 7 * 0.01 * torch.tensor([1.0, 1.0, 0.0])
    torch.testing.assert_close(z_star, expect)
    assert all(p.grad is None for p in bb.parameters())  # frozen: no gradient reached a parameter
    # the projected variant stops at the l_inf radius of Eq. 5
    t = LatentSearch(params=AdvLatZParams(steps=7, step_size=0.01, radius=0.025),
                     phases=frozenset({"sample"}))
    torch.testing.assert_close(t(ctx.z, ctx), ctx.z + 0.025 * torch.tensor([1.0, 1.0, 0.0]))
    # the search lowers the generator loss
    logit = lambda z: (z @ A.T) @ W  # noqa: E731
    assert (logit(z_star) > logit(ctx.z)).all()


def test_ifgsm_uniform_prior_is_clamped():
    bb, ctx = toy_ctx(prior="uniform")
    ctx.z[0] = torch.tensor([0.99, -0.2, 0.3])
    t = LatentSearch(params=AdvLatZParams(steps=50, step_size=0.01), phases=frozenset({"sample"}))
    z_star = t(ctx.z, ctx)
    assert z_star.max() <= 1.0 and z_star[0, 0] == 1.0
    torch.testing.assert_close(z_star[0, 1], torch.tensor(0.3))  # -0.2 + 50 * 0.01


def test_ifgsm_pure_function_matches_hand_steps():
    z0 = torch.tensor([[0.0, 1.0]])
    c = torch.tensor([[0.25, 0.93]])
    z = ifgsm(z0, lambda z: ((z - c) ** 2).sum(), steps=4, step_size=0.1)
    # coordinate 0: 0 -> .1 -> .2 -> .3 -> .2 (signed steps oscillate around the minimum),
    # coordinate 1: 1.0 -> .9 -> 1.0 -> .9 -> 1.0
    torch.testing.assert_close(z, torch.tensor([[0.2, 1.0]]), atol=1e-6, rtol=0)
    z = ifgsm(z0, lambda z: ((z - c) ** 2).sum(), steps=4, step_size=0.1, radius=0.15)
    torch.testing.assert_close(z, torch.tensor([[0.15, 1.0]]), atol=1e-6, rtol=0)


def test_distance_ratio_and_msgan_term_by_hand():
    x1 = torch.tensor([[0.0, 0.0], [1.0, 1.0]])
    x2 = torch.tensor([[1.0, 0.0], [1.0, 3.0]])  # |dx| = 1, 0, 0, 2: batch mean 0.75
    z1 = torch.tensor([[0.0], [0.0]])
    z2 = torch.tensor([[1.0], [2.0]])             # |dz| = 1, 2: batch mean 1.5
    torch.testing.assert_close(distance_ratio(x1, x2, z1, z2, per_sample=False), torch.tensor(0.5))
    torch.testing.assert_close(distance_ratio(x1, x2, z1, z2), torch.tensor([0.5, 0.5]))
    torch.testing.assert_close(distance_ratio(x1, x2, z1, z2, stabiliser=1.0),
                               torch.tensor([0.25, 1 / 3]))
    torch.testing.assert_close(mode_seeking_term(x1, x2, z1, z2), torch.tensor(1 / (0.5 + 1e-5)))
    x1 = torch.tensor([[2.0, 0.0], [1.0, 1.0]])  # |dx| = 1, 0, 0, 2 again, other pairs
    torch.testing.assert_close(mode_seeking_term(x1, x2, z1, 3 * z2), torch.tensor(1 / (1 / 6 + 1e-5)))


def test_hard_pair_step_follows_the_ratio_gradient_sign():
    """G(z) = diag(a) z: d/dz_j of sum_i a_i|d_i| / sum_i |d_i| has the sign of
    sign(d_j) * (a_j S - N): low-gain coordinates move away from z0, high-gain ones towards it."""
    a = torch.tensor([2.0, 1.0, 0.1])
    G = lambda z: z * a  # noqa: E731
    z0 = torch.zeros(1, 3)
    start = torch.tensor([[0.1, -0.2, 0.3]])
    d = start - z0
    S, N = d.abs().sum(), (a * d.abs()).sum()
    expect = start - 0.01 * (d.sign() * (a * S - N).sign())
    got = hard_pair_search(G, z0, G(z0), steps=1, step_size=0.01, start=start, stabiliser=0.0)
    torch.testing.assert_close(got, expect)
    ratio = lambda z: distance_ratio(G(z0), G(z), z0, z)  # noqa: E731
    hard = hard_pair_search(G, z0, G(z0), steps=20, step_size=0.01, start=start)
    inv = hard_pair_search(G, z0, G(z0), steps=20, step_size=0.01, start=start, inverse=True)
    assert ratio(hard) < ratio(start) < ratio(inv)


def test_search_state_restores_batchnorm_and_modes():
    net = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4)).train()
    before = net[1].running_mean.clone()
    with search_state([net], mode="current"):
        net(torch.randn(8, 3))
        assert not torch.equal(net[1].running_mean, before)
    torch.testing.assert_close(net[1].running_mean, before)
    with search_state([net], mode="eval"):
        assert not net[1].training
    assert net.training and net[1].training
    with search_state([net], restore_buffers=False):
        net(torch.randn(8, 3))
    assert not torch.equal(net[1].running_mean, before)


def test_mode_seeking_gradients_reach_only_the_generator():
    for params, hard in [(MSGANParams(), False), (AdvLatDivParams(), True)]:
        bb, ctx = toy_ctx(phase="g")
        for p in bb.discriminator.parameters():
            p.requires_grad_(False)  # as in the trainer's G step
        ctx.z_in = ctx.z
        reg = ModeSeeking(params=params, hard_pair=hard)
        terms = reg.g_terms(ctx)
        assert set(terms) == {"ms"} and terms["ms"].requires_grad
        terms["ms"].backward()
        assert bb.generator.A.grad is not None and bb.generator.A.grad.abs().sum() > 0
        assert bb.discriminator.w.grad is None


def test_div_term_equals_msgan_formula_on_its_pair():
    bb, ctx = toy_ctx(phase="g")
    ctx.z_in = ctx.z
    reg = ModeSeeking(params=AdvLatDivParams(ms_weight=2.0), hard_pair=True)
    torch.manual_seed(3)
    z2 = reg.partner(ctx.z, ctx.fake.detach(), ctx)
    torch.manual_seed(3)
    term = reg.g_terms(ctx)["ms"]
    with torch.no_grad():
        expect = 2.0 * mode_seeking_term(ctx.z @ A.T, z2 @ A.T, ctx.z, z2)
    torch.testing.assert_close(term.detach(), expect)
    # the partner is the Eq. 8 search started at z0 + N(0, 0.08^2) (the default start)
    torch.manual_seed(3)
    start = ctx.z + 0.08 * torch.randn_like(ctx.z)
    expect = hard_pair_search(lambda z: z @ A.T, ctx.z, ctx.z @ A.T, steps=3, step_size=0.01,
                              start=start, stabiliser=1e-5)
    torch.testing.assert_close(z2, expect)


# ----------------------------------------------------------------------------- in a pipeline


def test_advlat_z_at_sampling(ring_spec):
    pipe = Pipeline.from_spec(ring_spec)
    pipe.train(steps=5, progress=False)
    torch.manual_seed(1)
    _, z_plain, _ = pipe.sample(32, return_latents=True)
    torch.manual_seed(1)
    _, z_zero, _ = pipe.sample(32, with_=[{"name": "advlat_z", "steps": 0}], return_latents=True)
    torch.testing.assert_close(z_zero, z_plain)
    torch.manual_seed(1)
    x, z_star, _ = pipe.sample(32, with_=[{"name": "advlat_z", "steps": 4, "step_size": 0.05}],
                               return_latents=True)
    # every coordinate moved by exactly 4 signed steps (or stayed where the gradient was zero)
    shift = (z_star - z_plain).abs()
    assert torch.allclose(shift.amax(), torch.tensor(0.2), atol=1e-5)
    D = pipe.backbone.discriminator
    with torch.no_grad():
        assert D(x).mean() > D(pipe.backbone.generator(z_plain)).mean()


def test_cli_sample_with_advlat_z(ring_spec, cli, tmp_path):
    pipe = Pipeline.from_spec(ring_spec)
    pipe.train(steps=2, progress=False)
    pipe.save(tmp_path / "run")
    code, out, err = cli("sample", tmp_path / "run", "--n", "16", "--with", "advlat_z",
                         "--with-set", "advlat_z.steps=3", "--out", tmp_path / "g.png")
    assert code == 0 and (tmp_path / "g.png").stat().st_size > 0, err
    code, out, err = cli("sample", tmp_path / "run", "--n", "16", "--with", "advlat_z",
                         "--with-set", "advlat_z.stepz=3", "--out", tmp_path / "h.png")
    assert code != 0 and "steps" in out + err


def test_qua_plus_and_div_plus_train(ring_spec):
    for alias, names in [("qua+", ["advlat_qua", "advlat_z"]), ("div+", ["advlat_div", "advlat_z"])]:
        spec = {**ring_spec, "stack": ring_spec["stack"] + f" + {alias}"}
        pipe = Pipeline.from_spec(spec)
        assert [c.entry_name for c in pipe.components] == names
        logs = pipe.train(steps=3, progress=False)
        assert all(torch.isfinite(torch.tensor(v)) for v in logs.values())
        if alias == "div+":
            assert "advlat_div/ms" in logs
        # qua only in D updates, z only at sampling
        if alias == "qua+":
            assert pipe.components[0].phases == {"d"}
        assert pipe.components[1].phases == {"sample"}
        x = pipe.sample(16)  # the stack's own advlat_z applies
        assert x.shape == (16, 2)


def test_qua_moves_the_latents_of_d_updates(ring_spec):
    spec = {**ring_spec, "stack": ring_spec["stack"] + " + advlat_qua",
            "methods": [{"name": "advlat_qua", "steps": 2, "step_size": 0.1}]}
    pipe = Pipeline.from_spec(spec)
    t = pipe.components[0]
    real, real_y = next(iter(pipe.stream))
    ctx = StepContext(phase="d", backbone=pipe.backbone, loss=pipe.loss, step=1,
                      z=pipe.backbone.sample_latent(len(real)), real=real)
    with torch.no_grad():  # the trainer runs D-phase transforms under no_grad
        z_in = t(ctx.z, ctx)
    torch.testing.assert_close((z_in - ctx.z).abs().amax(), torch.tensor(0.2))
    assert all(p.grad is None for p in pipe.backbone.parameters())


def test_conditional_backbone_uses_labels():
    spec = {"seed": 0,
            "backbone": {"hidden": [16], "conditional": True, "latent_dim": 4},
            "data": {"resolution": 8}, "train": {"batch_size": 8}}
    for method in ["qua+", "advlat_div", "msgan"]:
        pipe = Pipeline.from_spec({**spec, "stack": f"backbone=mlp + data=digits + {method}"})
        logs = pipe.train(steps=2, progress=False)
        assert all(torch.isfinite(torch.tensor(v)) for v in logs.values())
        y = torch.arange(8) % 10
        x = pipe.sample(8, y=y, with_=[{"name": "advlat_z", "steps": 2}])
        assert x.shape == (8, 1, 8, 8)


def test_refusals_and_options():
    with pytest.raises(IncompatibleStackError, match="discriminator"):
        Pipeline.from_spec({"stack": "backbone=autoencoder + data=ring + advlat_qua",
                            "backbone": {"hidden": [8]}})
    with pytest.raises(IncompatibleStackError, match="msgan"):
        Pipeline.from_spec({"stack": "backbone=mlp + data=ring + advlat_div + msgan"})
    for method in ["msgan", "advlat_div"]:  # nothing would train G but the mode-seeking term
        with pytest.raises(IncompatibleStackError, match="no discriminator"):
            Pipeline.from_spec({"stack": f"backbone=autoencoder + data=ring + {method}",
                                "backbone": {"hidden": [8]}})
    with pytest.raises(Exception, match="start_scale"):
        Pipeline.from_spec({"stack": "backbone=mlp + data=ring + advlat_div", "methods": [
            {"name": "advlat_div", "start_scale": 0.0}]})
    assert AdvLatZParams().steps == 100 and AdvLatQuaParams().steps == 1
    assert AdvLatDivParams().steps == 3 and AdvLatDivParams().step_size == 0.01
