"""What a seed fixes for two cells of a sweep (docs/sweeps.md, "What a seed pairs").

A sweep compares a cell with the baseline seed by seed, so runs of one seed must start from the
same G and D, see the same data in the same order, and draw the same latents at every step, even
when the method adds modules of its own or draws random numbers of its own."""

from __future__ import annotations

import pytest
import torch

from gantk import Pipeline, temporary_plugin
from gantk.stack.hookspecs import hookimpl
from gantk.base.interfaces import Regularizer

# methods that leave G's and D's architecture alone, on a backbone they build on
SAME_ARCHITECTURE = [
    ("mlp", "ring", "advlat_qua"), ("mlp", "ring", "msgan"), ("mlp", "ring", "advlat_div"),
    ("mlp", "ring", "lis"), ("mlp", "ring", "reverser"), ("mlp", "ring", "gp"),
    ("dcgan", "digits", "clr"), ("dcgan", "digits", "acl"), ("dcgan", "digits", "r1"),
    ("dcgan", "digits", "diffaugment"),
]


def _spec(backbone: str, data: str, method: str | None) -> dict:
    stack = f"backbone={backbone} + loss=ns + data={data}" + (f" + {method}" if method else "")
    spec = {"stack": stack, "seed": 3,
            "train": {"steps": 3, "batch_size": 16, "log_every": 1, "sample_every": 0,
                      "ckpt_every": 0}}
    if backbone == "mlp":
        spec["backbone"] = {"hidden": [16, 16]}
        spec["data"] = {"per_mode": 50}
    else:
        spec["backbone"] = {"width": 4, "latent_dim": 8}
        spec["data"] = {"resolution": 16}
    return spec


@pytest.mark.parametrize("backbone,data,method", SAME_ARCHITECTURE)
def test_a_method_does_not_shift_the_backbones_initial_weights(backbone, data, method):
    plain = Pipeline.from_spec(_spec(backbone, data, None))
    other = Pipeline.from_spec(_spec(backbone, data, method))
    for net in ("generator", "discriminator"):
        a = getattr(plain.backbone, net).state_dict()
        b = getattr(other.backbone, net).state_dict()
        assert a.keys() == b.keys()
        for k in a:
            torch.testing.assert_close(a[k], b[k], rtol=0, atol=0, msg=f"{method}: {net}.{k}")


class _Tap(Regularizer):
    """Records the step's latents and real batch as every phase sees them; adds no loss."""

    seen: list = []

    def d_terms(self, ctx):
        _Tap.seen.append(("d", ctx.step, ctx.z.clone(), ctx.real.clone()))
        return {}

    def g_terms(self, ctx):
        _Tap.seen.append(("g", ctx.step, ctx.z.clone(), ctx.real.clone()))
        return {}


class _TapPlugin:
    @hookimpl
    def gantk_register(self, register):
        register.regularizer("tap", lambda p, c: _Tap(), summary="test: records the latents")


def _record(method: str | None, seed: int = 3) -> list:
    _Tap.seen = []
    spec = _spec("mlp", "ring", method)
    spec["stack"] += " + tap"
    spec["seed"] = seed
    with temporary_plugin(_TapPlugin(), name="test-tap"):
        Pipeline.from_spec(spec).train(progress=False)
    return list(_Tap.seen)


@pytest.mark.parametrize("method", ["advlat_qua", "msgan", "gp", "lis"])
def test_runs_of_one_seed_draw_the_same_latents_and_data(method):
    """advlat_qua searches with noise of its own, msgan and gp draw extra latents or mixing
    weights, lis adds modules: none of it moves a step's latents or the data order."""
    plain, other = _record(None), _record(method)
    assert [(ph, st) for ph, st, _, _ in plain] == [(ph, st) for ph, st, _, _ in other]
    assert len(plain) == 6  # D and G phase of 3 steps
    for (_, _, za, xa), (_, _, zb, xb) in zip(plain, other):
        torch.testing.assert_close(za, zb, rtol=0, atol=0)
        torch.testing.assert_close(xa, xb, rtol=0, atol=0)


def test_another_seed_draws_other_latents_and_data():
    a, b = _record(None), _record(None, seed=4)
    assert not torch.equal(a[0][2], b[0][2]) and not torch.equal(a[0][3], b[0][3])
    assert not torch.equal(a[0][2], a[1][2])  # D's and G's latents of one step differ
