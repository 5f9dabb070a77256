"""What a training step does not pay for, and what its cheaper checks still guarantee (issue 31).

No timings here (speed lives in benchmarks/step_overhead.py): these check the structure that keeps
the step cheap (an fp32 step enters no autocast context, a call that trains no step builds
nothing) and that the cheaper finiteness check and paired draws keep their guarantees."""

from __future__ import annotations

import pytest
import torch

from gantk import Pipeline, TrainingError, temporary_plugin
from gantk.base.interfaces import Regularizer
from gantk.stack.hookspecs import hookimpl


def _ring(precision: str = "fp32", extra: str = "") -> dict:
    return {"stack": "backbone=mlp + loss=ns + data=ring" + extra, "seed": 0,
            "backbone": {"hidden": [16, 16]}, "data": {"per_mode": 50},
            "train": {"steps": 4, "batch_size": 16, "precision": precision, "log_every": 1,
                      "sample_every": 0, "ckpt_every": 0}}


@pytest.mark.parametrize("precision, enters", [("fp32", False), ("bf16", True)])
def test_an_fp32_step_enters_no_autocast_context(precision, enters, monkeypatch):
    entered: list[str] = []
    enter = torch.autocast.__enter__

    def counting(self):
        entered.append(self.device)
        return enter(self)

    monkeypatch.setattr(torch.autocast, "__enter__", counting)
    pipe = Pipeline.from_spec(_ring(precision), device="cpu")
    pipe.train(steps=2, progress=False)
    assert bool(entered) is enters, entered
    assert not pipe.trainer.precision._scalers  # no GradScaler outside fp16


def test_an_fp32_step_under_the_callers_autocast_still_runs_its_backward_outside_it():
    pipe = Pipeline.from_spec(_ring(), device="cpu")
    seen = []

    def hook(grad):
        seen.append(torch.is_autocast_enabled("cpu"))
        return grad

    next(pipe.backbone.generator.parameters()).register_hook(hook)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        pipe.train(steps=1, progress=False)
    assert seen == [False]


def test_a_call_that_trains_no_step_builds_no_trainer():
    pipe = Pipeline.from_spec(_ring(), device="cpu")
    pipe.train(steps=0, progress=False)
    assert not pipe.trainer_built and pipe._stream is None


class _Terms(Regularizer):
    """D terms given by the test: ``values(step)`` -> {name: float}."""

    def __init__(self, values):
        super().__init__()
        self.values = values

    def d_terms(self, ctx):
        return {k: torch.tensor(v) for k, v in self.values(ctx.step).items()}


def _with_terms(values, steps: int):
    class Plugin:
        @hookimpl
        def gantk_register(self, register):
            register.regularizer("terms", lambda p, c: _Terms(values), summary="test")

    weights = {}

    class Snapshot:
        @hookimpl
        def gantk_on_step_end(self, pipeline, step, logs):
            weights[step] = {k: v.clone() for k, v in pipeline.backbone.state_dict().items()}

    with temporary_plugin(Plugin(), name="test-terms"), \
            temporary_plugin(Snapshot(), name="test-snapshot"):
        pipe = Pipeline.from_spec(_ring(extra=" + terms"), device="cpu")
        try:
            pipe.train(steps=steps, progress=False)
        except TrainingError as exc:
            return pipe, weights, exc
    return pipe, weights, None


def test_a_nan_term_among_finite_ones_stops_at_its_step_before_any_update():
    pipe, weights, err = _with_terms(
        lambda step: {"ok": 1.0, "bad": float("nan") if step == 3 else 0.5, "inf": 2.0}, 4)
    assert err is not None
    text = err.paragraph()
    assert "at step 3 (D update)" in text and "terms/bad = nan" in text
    assert "terms/ok" not in text and "terms/inf" not in text  # only the offending term named
    assert sorted(weights) == [1, 2] and pipe.step == 2
    for k, v in pipe.backbone.state_dict().items():  # neither D nor G moved in step 3
        assert torch.equal(v, weights[2][k]), k


def test_an_infinite_term_stops_the_run_naming_it():
    _, _, err = _with_terms(lambda step: {"ok": 1.0, "big": float("-inf")}, 2)
    assert err is not None and "at step 1 (D update)" in err.paragraph()
    assert "terms/big = -inf" in err.paragraph() and "terms/ok" not in err.paragraph()


def test_finite_terms_whose_sum_overflows_do_not_stop_the_run():
    # the check reads the sum first; an overflow of finite terms is told apart term by term
    pipe, weights, err = _with_terms(lambda step: {"a": 3e38, "b": 3e38}, 2)
    assert err is None and pipe.step == 2 and sorted(weights) == [1, 2]


def test_a_paired_draw_leaves_the_global_stream_where_it_was_even_when_it_fails():
    pipe = Pipeline.from_spec(_ring(), device="cpu")
    torch.manual_seed(123)
    before = torch.get_rng_state()
    z = pipe.world.draw_paired(lambda m: torch.randn(m, 2), 8, step=5, stream=0)
    assert torch.equal(torch.get_rng_state(), before)
    key = (0 * 1_000_003 + 5 * 7_919 + 0 * 104_729 + 0x5EED) % 2 ** 63
    want = torch.randn(8, 2, generator=torch.Generator().manual_seed(key))
    assert torch.equal(z, want)  # the stream is a pure function of (seed, step, stream)

    def fails(m):
        torch.randn(m)
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        pipe.world.draw_paired(fails, 8, step=5, stream=0)
    assert torch.equal(torch.get_rng_state(), before)


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_the_step_context_names_a_double_backward_of_a_compiled_net_and_leaves_autocast(precision):
    from gantk.base.errors import SpecError
    from gantk.train.precision import Precision

    prec = Precision(precision, torch.device("cpu"))
    with pytest.raises(SpecError, match="train.compile") as err:
        with prec.around_step:
            assert torch.is_autocast_enabled("cpu") is (precision == "bf16")
            raise RuntimeError("Compiled functions can't ... double backward ...")
    assert "compile = false" in err.value.paragraph()
    assert not torch.is_autocast_enabled("cpu")
    with pytest.raises(RuntimeError, match="other failure"):  # anything else passes unchanged
        with prec.around_step:
            raise RuntimeError("other failure")
    assert not torch.is_autocast_enabled("cpu")
    with prec.around_step:  # re-entered every step
        assert torch.is_autocast_enabled("cpu") is (precision == "bf16")
    assert not torch.is_autocast_enabled("cpu")
