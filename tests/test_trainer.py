"""The step order the trainer promises (docs/architecture.md, "The step"), pinned with spies.

Per step: ``n_critic`` D updates, then the G update with D frozen (``requires_grad`` False on
every D parameter), then each component's own (aux) update, then the EMA of G, then
``on_step_end``; each phase's latents come from the paired stream of (seed, step, phase). The
spies only watch: they record what they see through the public API (a registered component,
``Pipeline.trainer.optimizers``, the EMA module, ``World.draw_paired``).
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from gantk import Pipeline, Regularizer, hookimpl, temporary_plugin
from gantk.train import ema

EVENTS: list[tuple] = []


class _Spy(Regularizer):
    """Adds no loss of its own to D or G (a zero term keeps the phase's update running), and
    records each phase it is called in and whether D could receive gradients there."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.zeros(()))  # trained by its own (aux) optimiser

    def _d_trainable(self, ctx) -> bool:
        return any(p.requires_grad for p in ctx.backbone.discriminator.parameters())

    def d_terms(self, ctx):
        EVENTS.append(("d_terms", ctx.step, self._d_trainable(ctx), ctx.z.clone()))
        return {}

    def g_terms(self, ctx):
        EVENTS.append(("g_terms", ctx.step, self._d_trainable(ctx), ctx.z.clone()))
        return {}

    def aux_parameters(self):
        return [self.w]

    def aux_terms(self, ctx):
        EVENTS.append(("aux_terms", ctx.step, self._d_trainable(ctx), ctx.z.clone()))
        return {"w": (self.w - 1.0) ** 2}

    def on_step_end(self, ctx):
        EVENTS.append(("on_step_end", ctx.step))


class _SpyPlugin:
    @hookimpl
    def gantk_register(self, register):
        register.regularizer("spy", lambda p, c: _Spy(), summary="test: records the step order")

    @hookimpl
    def gantk_on_step_end(self, pipeline, step, logs):
        EVENTS.append(("hook", step, dict(logs)))


@pytest.fixture(autouse=True)
def spy(monkeypatch):
    """The spy plugin registered for one test; the EMA update recorded where the trainer calls it."""
    update = ema.update

    def recorded(avg, model, beta):
        EVENTS.append(("ema",))
        return update(avg, model, beta)

    monkeypatch.setattr(ema, "update", recorded)
    EVENTS.clear()
    with temporary_plugin(_SpyPlugin(), name="test-spy"):
        yield


def _pipe(n_critic: int = 3, *, log_every: int = 2) -> Pipeline:
    spec = {"stack": "backbone=mlp + loss=ns + data=ring + spy", "seed": 5,
            "backbone": {"hidden": [8]}, "data": {"per_mode": 20},
            "train": {"steps": 4, "batch_size": 8, "n_critic": n_critic, "ema_decay": 0.9,
                      "log_every": log_every, "sample_every": 0, "ckpt_every": 0}}
    pipe = Pipeline.from_spec(spec)
    for name, opt in pipe.trainer.optimizers.items():  # optimiser steps, by optimiser name
        def step(*args, _name=name, _real=opt.step, **kwargs):
            EVENTS.append(("step", _name))
            return _real(*args, **kwargs)

        opt.step = step
    return pipe


def _run(pipe: Pipeline, steps: int) -> list[tuple]:
    EVENTS.clear()
    pipe.train(steps, progress=False)
    return list(EVENTS)


def test_one_step_is_n_critic_d_updates_then_g_then_aux_then_ema_then_step_end():
    pipe = _pipe(n_critic=3)
    events = _run(pipe, 1)
    order = [e[0] if e[0] != "step" else f"step:{e[1]}" for e in events]
    aux = next(n for n in pipe.trainer.optimizers if n.startswith("aux"))
    assert order == ["d_terms", "step:d"] * 3 + ["g_terms", "step:g", "aux_terms", f"step:{aux}",
                                                "ema", "on_step_end", "hook"]


def test_d_is_frozen_in_the_g_step_only():
    pipe = _pipe(n_critic=2)
    events = _run(pipe, 2)
    trainable = {(e[0], e[2]) for e in events if e[0].endswith("_terms")}
    assert trainable == {("d_terms", True), ("g_terms", False), ("aux_terms", True)}
    assert all(p.requires_grad for p in pipe.backbone.discriminator.parameters())  # restored


def test_each_phase_draws_its_latents_from_the_paired_stream():
    n_critic = 2
    pipe = _pipe(n_critic=n_critic)
    events = _run(pipe, 2)
    bb = pipe.backbone

    def paired(step, stream):
        return pipe.world.draw_paired(lambda m: bb.sample_latent(m, device=pipe.device), 8,
                                      step=step, stream=2 * stream)

    for step in (1, 2):
        zs = [e[3] for e in events if e[0].endswith("_terms") and e[1] == step]
        want = [paired(step, i) for i in range(n_critic + 2)]  # D x n_critic, then G, then aux
        assert len(zs) == len(want)
        for got, expected in zip(zs, want, strict=True):
            torch.testing.assert_close(got, expected, rtol=0, atol=0)


@pytest.mark.parametrize("out", [False, True], ids=["in memory", "run directory"])
def test_the_step_end_hook_gets_the_logged_means_with_or_without_a_run_directory(out, tmp_path):
    """One loop for both: every log_every steps the hook receives the window's means."""
    pipe = _pipe(n_critic=1, log_every=2)
    if out:
        pipe.run_dir = tmp_path / "run"
    events = _run(pipe, 4)
    hooks = [e for e in events if e[0] == "hook"]
    assert [e[1] for e in hooks] == [1, 2, 3, 4]
    assert hooks[0][2] == {} and hooks[2][2] == {}  # between log rows: nothing new
    assert {"loss/d", "loss/g", "spy/w"} <= set(hooks[1][2]) and set(hooks[3][2]) == set(hooks[1][2])
    assert all(isinstance(v, float) for v in hooks[3][2].values())
    assert (tmp_path / "run" / "metrics.jsonl").is_file() == out
