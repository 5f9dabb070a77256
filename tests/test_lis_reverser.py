"""The reverser (plugins/lis/reverser.py): R-iterative's iteration probabilities and loss weights on
known values, gradients (G gets L_G in full, R gets the (1 - lambda^(1+t)) share plus the
similarity term), R-separate's fit with G frozen, its cache, refusals and every backbone."""

from __future__ import annotations

import copy
import math

import pytest
import torch

from gantk import IncompatibleStackError, Pipeline
from gantk.base.interfaces import StepContext
from gantk_plugins.lis import equations as eq
from gantk_plugins.lis import reverser as rv
from tiny import TINY_BACKBONES, assert_draws_follow, tiny_spec

BASE = {
    "stack": "backbone=dcgan + loss=ns + data=digits",
    "seed": 0,
    "backbone": {"width": 4, "latent_dim": 8},
    "data": {"resolution": 16},
    "train": {"steps": 2, "batch_size": 8, "log_every": 1, "sample_every": 0, "ckpt_every": 0},
}


def iterative_spec(**options) -> dict:
    out = copy.deepcopy(BASE)
    out["stack"] += " + reverser"
    out["methods"] = [{"name": "reverser", "mode": "iterative", **options}]
    return out


def comps(pipe):
    it = next(c for c in pipe.components if isinstance(c, rv.ReverserIterative))
    sim = next(c for c in pipe.components if isinstance(c, rv.ReverserSimilarity))
    return it, sim


# ----------------------------------------------------------------------------- equations


def test_iteration_probabilities_known_values():
    assert eq.iteration_start_probabilities(3) == [0.25, 0.5, 0.75, 1.0]
    trained = eq.iteration_trained_probabilities(3)
    assert trained == pytest.approx([0.25, 0.625, 0.90625, 1.0])
    assert eq.iteration_sampling_probabilities(3) == pytest.approx([t / 2.78125 for t in trained])
    assert eq.iteration_trained_probabilities(1) == pytest.approx([0.5, 1.0])
    assert_draws_follow(lambda: eq.draw_trained_iteration(3),
                        eq.iteration_sampling_probabilities(3), n=6000)


def test_reverser_objective_and_scale_grad_known_values():
    sim, lg = torch.tensor(2.0), torch.tensor(10.0)
    assert float(eq.reverser_objective(sim, lg, 0.9, 1)) == pytest.approx(0.81 * 2 + 0.19 * 10)
    assert float(eq.reverser_objective(sim, lg, 0.9, 0)) == pytest.approx(0.9 * 2 + 0.1 * 10)
    x = torch.ones(3, requires_grad=True)
    (eq.scale_grad(x, 0.25) * torch.tensor([1.0, 2.0, 3.0])).sum().backward()
    torch.testing.assert_close(x.grad, torch.tensor([0.25, 0.5, 0.75]))


# ----------------------------------------------------------------------------- R-iterative


def _g_ctx(pipe, z):
    return StepContext(phase="g", backbone=pipe.backbone, loss=pipe.loss, step=1, z=z)


def test_iterative_gradients_follow_algorithm_2(monkeypatch):
    torch.manual_seed(0)
    pipe = Pipeline.from_spec(iterative_spec(iterations=2, dropout=0.0))
    it, sim = comps(pipe)
    monkeypatch.setattr(it, "iteration", lambda phase, device: 1)
    G, D, R = pipe.backbone.generator, pipe.backbone.discriminator, it.R
    for p in D.parameters():
        p.requires_grad_(False)
    z = pipe.backbone.sample_latent(8)

    ctx = _g_ctx(pipe, z)
    ctx.z_in = it(z, ctx)
    pipe.loss.g_loss(ctx.fake_logits).backward()
    g_scaled = [p.grad.clone() for p in R.parameters()]
    g_G = [p.grad.clone() for p in G.parameters()]

    R.zero_grad(set_to_none=True)
    G.zero_grad(set_to_none=True)
    with torch.no_grad():
        x0 = G(z)
    pipe.loss.g_loss(D(G(R(x0)))).backward()  # the unscaled reference
    w = 0.9 ** 2
    for a, b in zip(g_scaled, [p.grad for p in R.parameters()]):
        torch.testing.assert_close(a, (1 - w) * b)
    for a, b in zip(g_G, [p.grad for p in G.parameters()]):
        torch.testing.assert_close(a, b)  # G gets L_G in full

    # the similarity term: lambda^(1+t) MSE(z_t, z_0), reaching R only
    R.zero_grad(set_to_none=True)
    G.zero_grad(set_to_none=True)
    ctx = _g_ctx(pipe, z)
    ctx.z_in = it(z, ctx)
    term = sim.g_terms(ctx)["similarity"]
    torch.testing.assert_close(term, w * eq.similarity_loss(ctx.z_in, z))
    term.backward()
    assert all(p.grad is not None for p in R.parameters())
    assert all(p.grad is None for p in pipe.backbone.parameters())


def test_iterative_in_the_trainer_and_at_sampling(monkeypatch):
    torch.manual_seed(0)
    pipe = Pipeline.from_spec(iterative_spec(iterations=3))
    it, _ = comps(pipe)
    r_ids = {id(p) for p in it.R.parameters()}
    opts = pipe.trainer.optimizers
    assert r_ids <= {id(p) for g in opts["g"].param_groups for p in g["params"]}
    assert not r_ids & {id(p) for g in opts["d"].param_groups for p in g["params"]}
    monkeypatch.setattr(it, "iteration", lambda phase, device: 3 if phase != "sample" else 3)
    logs = pipe.trainer.step(1, pipe.stream)
    assert "reverser/similarity" in logs
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in it.R.parameters())
    monkeypatch.undo()
    calls = []
    hook = it.R.register_forward_hook(lambda m, i, o: calls.append(m.training))
    pipe.sample(4, batch_size=4)
    hook.remove()
    assert calls == [False, False, False]  # N_R iterations, R in eval mode at sampling
    torch.manual_seed(0)
    assert {it.iteration("g", "cpu") for _ in range(60)} == {0, 1, 2, 3}


# ----------------------------------------------------------------------------- R-separate


def test_separate_fits_with_g_frozen_and_samples_g_r_g(tmp_path, monkeypatch):
    torch.manual_seed(0)
    pipe = Pipeline.from_spec(BASE)
    pipe.train(steps=2, out=tmp_path / "run", progress=False)
    before = {k: v.clone() for k, v in pipe.backbone.state_dict().items()}
    opts = {"name": "reverser", "steps": 100, "batch_size": 64, "progress": False, "dropout": 0.0}
    [comp] = pipe.extra_components([opts])
    first, last = comp.losses[:10], comp.losses[-10:]
    assert sum(last) / 10 < 0.9 * sum(first) / 10  # MSE(R(G(z)), z) goes down
    for k, v in pipe.backbone.state_dict().items():
        torch.testing.assert_close(v, before[k])  # G (and D) untouched
    cached = list((tmp_path / "run" / "reverser").glob("*.safetensors"))
    assert len(cached) == 1

    torch.manual_seed(5)
    x = pipe.sample(6, with_=[opts])
    torch.manual_seed(5)
    z = pipe.backbone.sample_latent(6)
    G = pipe.sampling_generator
    with torch.no_grad(), pipe.eval_mode():
        expected = G(comp.R(G(z)))
    # float noise of two conv stacks in a row (seen up to ~3e-4); a wrong pipeline differs by O(0.1)
    torch.testing.assert_close(x, expected, atol=2e-3, rtol=0)

    # a new process (a loaded run) reuses the cached R instead of fitting again
    monkeypatch.setattr(rv, "fit_separate", lambda *a, **k: pytest.fail("R was refitted"))
    loaded = Pipeline.load(tmp_path / "run")
    torch.manual_seed(5)
    torch.testing.assert_close(loaded.sample(6, with_=[opts]), x, atol=2e-3, rtol=0)


def test_separate_as_stack_member_fits_at_train_end():
    s = copy.deepcopy(BASE)
    s["stack"] += " + reverser"
    s["methods"] = [{"name": "reverser", "steps": 5, "progress": False}]
    pipe = Pipeline.from_spec(s)
    [comp] = pipe.components
    assert comp.phases == {"sample"} and int(comp.fitted_step) == -1
    pipe.train(steps=2, progress=False)
    assert int(comp.fitted_step) == 2 and len(comp.losses) == 5


def test_refusals_name_the_reason():
    ae = {"seed": 0, "backbone": {"name": "autoencoder", "width": 4, "latent_dim": 8},
          "data": {"name": "digits", "resolution": 16}}
    with pytest.raises(IncompatibleStackError, match="discriminator"):
        Pipeline.from_spec({**ae, "methods": [{"name": "reverser", "mode": "iterative"}]})
    with pytest.raises(IncompatibleStackError, match="trains G"):
        Pipeline.from_spec({**ae, "methods": [{"name": "reverser"}]})


@pytest.mark.parametrize("backbone", sorted(set(TINY_BACKBONES) - {"autoencoder"}))
def test_reverser_on_every_backbone(backbone):
    s = tiny_spec(backbone, [{"name": "reverser", "mode": "iterative", "iterations": 2}])
    pipe = Pipeline.from_spec(s)
    logs = pipe.train(steps=2, progress=False)
    assert all(math.isfinite(v) for v in logs.values())
    x = pipe.sample(3, with_=[{"name": "reverser", "steps": 3, "progress": False}])
    assert x.shape == (3, *pipe.data_info.shape) and torch.isfinite(x).all()


@pytest.mark.parametrize("backbone", ["dcgan", "mlp"])
def test_dropout_on_every_conv_but_the_first_and_off_in_eval(backbone):
    pipe = Pipeline.from_spec(tiny_spec(backbone, []))
    R = rv.make_reverser(pipe.backbone, rv.ReverserParams(dropout=0.5))
    convs = [m for m in R.modules() if isinstance(m, torch.nn.Conv2d)]
    hooked = [m for m in R.modules() if m._forward_hooks]
    if convs:
        assert hooked == convs[1:]
    else:
        assert hooked == [m for m in R.modules() if isinstance(m, torch.nn.Linear)][:-1]
    x = pipe.sample(4)
    R.train()
    assert not torch.allclose(R(x), R(x))
    R.eval()
    torch.testing.assert_close(R(x), R(x))
    assert R(x).shape == (4, pipe.backbone.latent_dim)
