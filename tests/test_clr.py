"""CLR-GAN (``clr``): the two terms on known tensors, which networks each term trains, the latent
target, style mixing off in the reconstruction pass, the head options, and every backbone."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from gantk import IncompatibleStackError, Pipeline
from gantk.base.interfaces import StepContext
from gantk_plugins.clr import (CLR, CLRParams, distance, latent_consistency_loss,
                               reconstruction_loss, reconstruction_pass)

SG2 = {"latent_dim": 16, "style_dim": 16, "n_mlp": 2, "channel_base": 64, "channel_max": 16}


def _pipe(backbone: dict, *, data: dict | None = None, clr: dict | None = None, seed: int = 0):
    return Pipeline.from_spec({
        "seed": seed, "backbone": backbone, "data": data or {"name": "digits", "resolution": 16},
        "methods": [{"name": "clr", **(clr or {})}],
        "train": {"steps": 2, "batch_size": 8, "device": "cpu", "log_every": 1}})


def _clr(pipe) -> CLR:
    (comp,) = [c for c in pipe.components if isinstance(c, CLR)]
    return comp


def _ctx(pipe, phase: str, n: int = 8) -> StepContext:
    """The context the trainer builds for ``phase`` (the public ``Pipeline.step_context``)."""
    x, y = pipe.real_data()
    return pipe.step_context(phase, real=x[:n], real_y=y[:n] if pipe.backbone.num_classes else None,
                             step=1)


# ------------------------------------------------------------------------- equations, known tensors

def test_distance_on_known_tensors():
    a = torch.tensor([[1.0, -2.0], [3.0, 4.0]])
    b = torch.zeros(2, 2)
    assert distance(a, b, kind="l1") == pytest.approx(10 / 4)
    assert distance(a, b, kind="l1", reduction="sum") == pytest.approx(10 / 2)  # Eq. 6/8 as printed
    assert distance(a, b, kind="mse") == pytest.approx(30 / 4)
    assert distance(a, b, kind="mse", reduction="sum") == pytest.approx(30 / 2)
    with pytest.raises(ValueError, match="one shape"):
        distance(a, torch.zeros(2, 3))


def test_latent_term_on_known_tensors():
    """lambda_1 * mean |W h + b - z'| with z' = ctx.z_in (what G received), not the raw draw."""
    comp = CLR(params=CLRParams(lambda_latent=5.0), feature_dim=3, latent_dim=2)
    with torch.no_grad():
        comp.head.weight.copy_(torch.tensor([[1.0, 0.0, 0.0], [0.0, 2.0, 1.0]]))
        comp.head.bias.copy_(torch.tensor([0.5, -1.0]))
    h = torch.tensor([[1.0, 1.0, 1.0], [0.0, -1.0, 2.0]])  # phi(h) = [[1.5, 2], [0.5, -1]]
    z_in = torch.tensor([[1.0, 1.0], [1.0, 1.0]])          # |diff| = [[.5, 1], [.5, 2]]
    ctx = StepContext(phase="d", backbone=None, loss=None, step=1, z=torch.full((2, 2), 9.0))
    ctx.z_in = z_in
    ctx.cache["fake_features"] = h
    assert comp.d_terms(ctx)["latent"].item() == pytest.approx(5.0 * 4.0 / 4)
    assert latent_consistency_loss(comp.phi(h), z_in, kind="mse").item() == pytest.approx(
        (0.25 + 1 + 0.25 + 4) / 4)


class _Double(nn.Module):
    """A known generator: G(z, y) = 2 z (+ y as an offset, to see that labels reach G)."""

    def forward(self, z, y=None):
        return 2 * z + (0 if y is None else y[:, None].float())


def test_reconstruction_term_on_known_tensors_uses_real_labels():
    comp = CLR(params=CLRParams(lambda_reconstruction=0.5), feature_dim=2, latent_dim=2)
    with torch.no_grad():
        comp.head.weight.copy_(torch.eye(2))
        comp.head.bias.zero_()
    x = torch.tensor([[1.0, 1.0], [0.0, 4.0]])
    h = torch.tensor([[0.5, 0.0], [1.0, 1.0]])
    y = torch.tensor([0, 1])  # G(phi(x), y) = [[1, 0], [3, 3]] -> |x - G| = [[0, 1], [3, 1]]
    ctx = StepContext(phase="g", backbone=None, loss=None, step=1, z=torch.zeros(2, 2), real=x,
                      real_y=y, y=torch.tensor([1, 1]), generator=_Double())
    ctx.cache["real_features"] = h
    assert comp.g_terms(ctx)["reconstruction"].item() == pytest.approx(0.5 * 5 / 4)
    assert reconstruction_loss(x, 2 * h, reduction="sum").item() == pytest.approx((1 + 4) / 2)  # rows [0, 1], [2, 2]


def test_zero_weights_add_no_terms():
    comp = CLR(params=CLRParams(lambda_latent=0, lambda_reconstruction=0), feature_dim=2, latent_dim=2)
    ctx = StepContext(phase="d", backbone=None, loss=None, step=1, z=torch.zeros(2, 2))
    assert comp.d_terms(ctx) == {} and comp.g_terms(ctx) == {}


# ------------------------------------------------------------------------- which networks each term trains

def _grads(params) -> list[bool]:
    return [p.grad is not None and bool(p.grad.abs().sum() > 0) for p in params]


@pytest.mark.parametrize("conditional", [False, True])
def test_latent_term_trains_only_d_and_its_head(conditional):
    pipe = _pipe({"name": "dcgan", "width": 4, "latent_dim": 8, "batch_norm": False,
                  "conditional": conditional})
    comp, bb = _clr(pipe), pipe.backbone
    ctx = _ctx(pipe, "d")
    comp.d_terms(ctx)["latent"].backward()
    assert all(_grads(comp.head.parameters()))
    assert any(_grads(bb.discriminator.parameters()))
    assert not any(p.grad is not None for p in bb.generator.parameters())


@pytest.mark.parametrize("conditional", [False, True])
def test_reconstruction_term_trains_only_g(conditional):
    """Not relying on the trainer's freezing of D: phi(x) itself is a constant for G."""
    pipe = _pipe({"name": "dcgan", "width": 4, "latent_dim": 8, "conditional": conditional})
    comp, bb = _clr(pipe), pipe.backbone
    ctx = _ctx(pipe, "g")
    comp.g_terms(ctx)["reconstruction"].backward()
    assert any(_grads(bb.generator.parameters()))
    assert not any(p.grad is not None for p in bb.discriminator.parameters())
    assert not any(p.grad is not None for p in comp.head.parameters())


def test_head_is_trained_by_ds_optimiser_and_g_buffers_are_kept():
    pipe = _pipe({"name": "dcgan", "width": 4, "latent_dim": 8})
    comp, G = _clr(pipe), pipe.backbone.generator
    assert any(p is q for p in comp.head.parameters()
               for g in pipe.trainer.optimizers["d"].param_groups for q in g["params"])
    head0 = copy.deepcopy(comp.head.state_dict())
    ctx = _ctx(pipe, "g")
    buffers0 = {k: b.clone() for k, b in G.named_buffers()}
    comp.g_terms(ctx)["reconstruction"].backward()  # the graph survives the buffer swap
    for k, b in G.named_buffers():
        assert torch.equal(b, buffers0[k]), k
    logs = pipe.train(steps=1, progress=False)
    assert {"clr/latent", "clr/reconstruction"} <= set(logs)
    assert not torch.equal(comp.head.weight, head0["weight"])


def test_latent_loss_goes_down_when_d_and_head_train_on_it():
    """D and phi learn to invert a fixed G (an MLP on 2-D latents) from the latent term alone."""
    pipe = _pipe({"name": "mlp", "hidden": [32, 32]}, data={"name": "ring", "per_mode": 32})
    comp, bb = _clr(pipe), pipe.backbone
    opt = torch.optim.Adam([*bb.discriminator.parameters(), *comp.head.parameters()], lr=1e-2)
    torch.manual_seed(1)
    z = bb.sample_latent(128, device="cpu")
    with torch.no_grad():
        fake = bb.generator(z)
    losses = []
    for _ in range(60):
        ctx = StepContext(phase="d", backbone=bb, loss=pipe.loss, step=1, z=z, _fake=fake)
        loss = comp.d_terms(ctx)["latent"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0]


# ------------------------------------------------------------------------- StyleGAN2

def test_style_mixing_is_off_in_the_reconstruction_pass():
    pipe = _pipe({"name": "stylegan2", **SG2, "mixing_prob": 1.0})
    comp, G = _clr(pipe), pipe.backbone.generator
    G.train()
    z = torch.randn(4, 16)
    torch.manual_seed(0)
    a = G(z)
    b = G(z)
    assert not torch.allclose(a, b)  # mixing is on in training mode: the check below can fail
    w_avg = G.w_avg.clone()
    with reconstruction_pass(G):
        assert G.mixing_prob == 0
        c = G(z)
        d = G(z)
    assert torch.allclose(c, d) and G.mixing_prob == 1.0
    assert torch.equal(G.w_avg, w_avg)  # the reconstruction latents do not move the running w
    ctx = _ctx(pipe, "g")
    r1 = comp.g_terms(ctx)["reconstruction"]
    r2 = comp.g_terms(ctx)["reconstruction"]
    assert r1.item() == pytest.approx(r2.item())


def test_last_feature_layer_head():
    pipe = _pipe({"name": "stylegan2", **SG2}, clr={"head": "last_feature_layer"})
    comp = _clr(pipe)
    assert comp.head is None and list(comp.d_parameters()) == []
    h = torch.randn(3, 16)
    assert torch.equal(comp.phi(h), h)
    assert "clr/latent" in pipe.train(steps=1, progress=False)
    with pytest.raises(IncompatibleStackError, match="32-wide.*8-dimensional"):
        _pipe({"name": "dcgan", "width": 4, "latent_dim": 8}, clr={"head": "last_feature_layer"})


# ------------------------------------------------------------------------- every backbone

@pytest.mark.parametrize("backbone,data", [
    ({"name": "mlp", "hidden": [16, 16]}, {"name": "ring", "per_mode": 32}),
    ({"name": "dcgan", "width": 4, "latent_dim": 8, "conditional": True}, None),
    ({"name": "resnet", "g_channels": 16, "d_channels": 8, "latent_dim": 8}, None),
    ({"name": "stylegan2", **SG2, "conditional": True}, None),
])
def test_runs_on_every_backbone_with_a_discriminator(backbone, data):
    pipe = _pipe(backbone, data=data)
    logs = pipe.train(steps=2, progress=False)
    assert {"clr/latent", "clr/reconstruction"} <= set(logs)
    assert all(torch.isfinite(torch.tensor(v)) for v in logs.values())


def test_refused_without_a_discriminator():
    from gantk import get_registry

    assert {"discriminator", "d_features"} <= get_registry().entries["clr"].needs
    with pytest.raises(IncompatibleStackError, match="discriminator|D.s features"):
        _pipe({"name": "autoencoder", "width": 4, "latent_dim": 8, "hidden": [16]})


def test_options_are_validated():
    from gantk import SpecError

    with pytest.raises(SpecError, match="lambda_latent"):
        _pipe({"name": "dcgan", "width": 4, "latent_dim": 8}, clr={"lambda_latnt": 1.0})
    with pytest.raises(SpecError, match="distance"):
        _pipe({"name": "dcgan", "width": 4, "latent_dim": 8}, clr={"distance": "l2"})


def test_the_users_stack_stylegan2_clr_advlat_z():
    """backbone=stylegan2 + clr + advlat_z: trains, then samples with the I-FGSM search on z."""
    pipe = Pipeline.from_spec({
        "stack": "backbone=stylegan2 + data=digits + clr + advlat_z", "seed": 0,
        "backbone": SG2, "data": {"resolution": 16},
        "methods": [{"name": "clr", "head": "last_feature_layer", "distance": "mse"},
                    {"name": "advlat_z", "steps": 2}],
        "train": {"steps": 1, "batch_size": 8, "device": "cpu"}})
    logs = pipe.train(steps=1, progress=False)
    assert {"clr/latent", "clr/reconstruction"} <= set(logs)
    x = pipe.sample(4)
    assert x.shape == (4, 1, 16, 16) and torch.isfinite(x).all()
