"""G-LIS (plugins/lis): the early-stop probabilities and constraint weights on known values, the
phases, gradients reaching exactly the right networks, resumption, and every backbone."""

from __future__ import annotations

import copy
import math

import pytest
import torch

from gantk import IncompatibleStackError, Pipeline, get_registry
from gantk.base.interfaces import StepContext
from gantk_plugins.lis import equations as eq
from gantk_plugins.lis.glis import LISModule, LISParams, LISSimilarity, LISTransform, module_images
from tiny import TINY_BACKBONES, assert_draws_follow, tiny_spec

DIGITS = {
    "stack": "backbone=dcgan + loss=ns + data=digits + lis",
    "seed": 0,
    "backbone": {"width": 4, "latent_dim": 8},
    "data": {"resolution": 16},
    "methods": [{"name": "lis", "num_modules": 3}],
    "train": {"steps": 4, "batch_size": 8, "log_every": 1, "sample_every": 0, "ckpt_every": 2},
}


def spec(**lis) -> dict:
    out = copy.deepcopy(DIGITS)
    out["methods"][0].update(lis)
    return out


# ----------------------------------------------------------------------------- equations


def test_stop_probabilities_and_executed_distribution_known_values():
    assert eq.stop_probabilities(3) == [1 / 8, 1 / 4, 1 / 2]
    assert eq.stop_probabilities(1) == [1 / 2]
    assert eq.executed_modules_distribution(3) == pytest.approx([1 / 8, 7 / 32, 21 / 64, 21 / 64])
    assert eq.executed_modules_distribution(1) == pytest.approx([1 / 2, 1 / 2])
    assert eq.executed_modules_distribution(0) == [1.0]


def test_draw_matches_distribution():
    assert_draws_follow(lambda: eq.draw_executed_modules(3), eq.executed_modules_distribution(3),
                        n=8000)


def test_similarity_weights_and_loss_known_values():
    assert eq.similarity_weights(0.9, 3) == pytest.approx([0.9, 0.81, 0.729])
    assert eq.similarity_weights(0.0, 2) == [0.0, 0.0]
    z = torch.zeros(4, 5)
    assert float(eq.similarity_loss(z + 2, z)) == pytest.approx(4.0)  # Eq. 2: mean of squares


def test_similarity_terms_on_known_chain():
    reg = LISSimilarity(params=LISParams(num_modules=3, similarity_weight=0.9))
    z = torch.randn(6, 4)
    terms = reg.terms([z, z + 1, z + 2, z - 3])
    assert set(terms) == {"similarity_1", "similarity_2", "similarity_3"}
    assert float(terms["similarity_1"]) == pytest.approx(0.9 * 1)
    assert float(terms["similarity_2"]) == pytest.approx(0.81 * 4)
    assert float(terms["similarity_3"]) == pytest.approx(0.729 * 9)
    # only the modules that ran are constrained; lambda_R = 0 switches the constraint off
    assert set(reg.terms([z, z + 1])) == {"similarity_1"}
    assert LISSimilarity(params=LISParams(similarity_weight=0.0)).terms([z, z + 1]) == {}


# ----------------------------------------------------------------------------- the modules


@pytest.mark.parametrize("norm", ["weight", "none"])
def test_module_is_residual_and_starts_near_identity(norm):
    torch.manual_seed(0)
    m = LISModule(width=8, norm=norm, init_scale=0.01)
    z = torch.randn(16, 8)
    torch.testing.assert_close(m(z), z + m.residual(z))
    assert (m(z) - z).abs().max() < 0.1
    with torch.no_grad():  # unit-norm rows: the first layer ignores the weights' scale
        if norm == "weight":
            before = m.fc1(z)
            m.fc1.weight.mul_(7.0)
            torch.testing.assert_close(m.fc1(z), before)


def _ctx(phase: str, pipe) -> StepContext:
    z = pipe.backbone.sample_latent(8)
    return StepContext(phase=phase, backbone=pipe.backbone, loss=pipe.loss, step=1, z=z)


def test_phases_all_modules_at_sampling_early_stop_in_training():
    pipe = Pipeline.from_spec(spec())
    lis = next(c for c in pipe.components if isinstance(c, LISTransform))
    assert lis.phases == {"d", "g", "sample"}
    for _ in range(20):
        ctx = _ctx("sample", pipe)
        lis(ctx.z, ctx)
        assert len(ctx.cache["lis.chain"]) == 4  # z and the 3 modules' outputs
    torch.manual_seed(3)
    seen = set()
    for phase in ("d", "g") * 40:
        ctx = _ctx(phase, pipe)
        out = lis(ctx.z, ctx)
        chain = ctx.cache["lis.chain"]
        seen.add(len(chain) - 1)
        torch.testing.assert_close(out, chain[-1])
    assert seen == {0, 1, 2, 3}
    off = Pipeline.from_spec(spec(early_stop=False))
    lis_off = next(c for c in off.components if isinstance(c, LISTransform))
    ctx = _ctx("g", off)
    lis_off(ctx.z, ctx)
    assert len(ctx.cache["lis.chain"]) == 4


def test_gradients_reach_the_right_networks():
    pipe = Pipeline.from_spec(spec(early_stop=False))
    lis = next(c for c in pipe.components if isinstance(c, LISTransform))
    trainer = pipe.trainer
    lis_ids = {id(p) for p in lis.parameters()}
    g_opt = {id(p) for grp in trainer.optimizers["g"].param_groups for p in grp["params"]}
    d_opt = {id(p) for grp in trainer.optimizers["d"].param_groups for p in grp["params"]}
    assert lis_ids <= g_opt and not lis_ids & d_opt  # trained with G, never by D's optimiser

    # the similarity term alone reaches the modules only: module i's term reaches modules 1..i
    reg = next(c for c in pipe.components if isinstance(c, LISSimilarity))
    # move the modules away from the identity so that every term has a gradient
    with torch.no_grad():
        for p in lis.parameters():
            p.add_(0.1 * torch.randn_like(p))
    ctx = _ctx("g", pipe)
    ctx.z_in = lis(ctx.z, ctx)
    reg.g_terms(ctx)["similarity_2"].backward()
    grads = [[p.grad for p in m.parameters()] for m in lis.lis]
    assert all(g is not None and g.abs().sum() > 0 for g in grads[0] + grads[1])
    assert all(g is None for g in grads[2])
    assert all(p.grad is None for p in pipe.backbone.parameters())

    # one trainer step: D's loss trains D only (transforms run without grad in the D phase),
    # G's loss reaches G and every module
    pipe.backbone.zero_grad(set_to_none=True)
    lis.zero_grad(set_to_none=True)
    trainer.step(1, pipe.stream)
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in lis.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in pipe.backbone.generator.parameters())


def test_logs_per_module_similarity_and_sampling_uses_all_modules():
    torch.manual_seed(0)
    pipe = Pipeline.from_spec(spec(early_stop=False))
    logs = pipe.train(steps=2, progress=False)
    assert {"lis/similarity_1", "lis/similarity_2", "lis/similarity_3"} <= set(logs)
    grid = module_images(pipe, 5)
    assert grid.shape == (5, 4, 1, 16, 16)
    torch.manual_seed(7)
    x = pipe.sample(5)
    torch.manual_seed(7)
    torch.testing.assert_close(x, module_images(pipe, 5)[:, -1])


def test_similarity_term_goes_down_and_limits_drift():
    """Modules pushed by a stand-in adversarial loss (move every z' along one direction): with
    lambda_R = 0.9 the constraint holds z' near z, with lambda_R = 0 the modules drift freely."""
    drift = {}
    for lam in (0.0, 0.9):
        torch.manual_seed(0)
        params = LISParams(num_modules=2, similarity_weight=lam, early_stop=False)
        lis, reg = LISTransform(params=params, latent_dim=4), LISSimilarity(params=params)
        opt = torch.optim.Adam(lis.g_parameters(), lr=1e-2)
        history = []
        for _ in range(100):
            z = torch.randn(64, 4)
            ctx = StepContext(phase="g", backbone=None, loss=None, step=0, z=z)
            out = lis(z, ctx)
            terms = reg.g_terms(ctx)
            loss = -out[:, 0].clamp(max=3).mean() + sum(terms.values(), torch.zeros(()))
            opt.zero_grad()
            loss.backward()
            opt.step()
            history.append(float(eq.similarity_loss(out.detach(), z)))
        drift[lam] = sum(history[-20:]) / 20
    assert drift[0.9] < 0.2 * drift[0.0], drift


def test_resume_is_exact(tmp_path):
    s = spec()
    s["train"].update(steps=2, ckpt_every=1)
    straight = Pipeline.from_spec(s)
    straight.train(out=tmp_path / "a", progress=False)
    first = Pipeline.from_spec(s)
    first.train(steps=1, out=tmp_path / "b", progress=False)
    resumed = Pipeline.from_spec(s)
    resumed.train(out=tmp_path / "b", progress=False)  # resumes from step 1 up to train.steps
    assert resumed.step == 2
    a = next(c for c in straight.components if isinstance(c, LISTransform)).state_dict()
    b = next(c for c in resumed.components if isinstance(c, LISTransform)).state_dict()
    for key in a:
        torch.testing.assert_close(b[key], a[key])


def test_registered_and_options_checked():
    reg = get_registry()
    assert "lis" in reg.names("method") and "reverser" in reg.names("method")
    with pytest.raises(Exception, match="num_module"):
        Pipeline.from_spec(spec(num_module=2))


@pytest.mark.parametrize("backbone", sorted(set(TINY_BACKBONES) - {"autoencoder"}))
def test_lis_on_every_backbone(backbone):
    s = tiny_spec(backbone, [{"name": "lis", "num_modules": 2}])
    pipe = Pipeline.from_spec(s)
    logs = pipe.train(steps=2, progress=False)
    assert all(math.isfinite(v) for v in logs.values())
    assert module_images(pipe, 3).shape[:2] == (3, 3)


def test_lis_refused_without_a_discriminator():
    """The modules learn from D's rating of G(z'); the autoencoder backbone has no D."""
    s = {"seed": 0, "backbone": {"name": "autoencoder", "width": 4, "latent_dim": 8},
         "data": {"name": "digits", "resolution": 16}, "methods": [{"name": "lis"}]}
    with pytest.raises(IncompatibleStackError, match="discriminator"):
        Pipeline.from_spec(s)
