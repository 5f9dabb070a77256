"""train.precision / channels_last: what low precision does to training, the penalties that
differentiate twice (gp, r1, StyleGAN2's path length) and the I-FGSM latent search."""

from __future__ import annotations

import copy

import pytest
import torch

from gantk import Pipeline
from gantk.train.precision import Precision, float32_under_fp16
from gantk_plugins.advlat.search import ifgsm
from gantk_plugins.backbones.stylegan2_reg import path_lengths
from gantk_plugins.losses import gradient_penalty, r1_penalty
from tiny import TEST_DEVICE, tiny_spec


def _train(spec: dict, precision: str, steps: int, **train):
    spec = copy.deepcopy(spec)
    spec["train"].update(steps=steps, precision=precision, device=TEST_DEVICE, **train)
    pipe = Pipeline.from_spec(spec, device=TEST_DEVICE)
    dtypes = []
    layer = next(m for m in pipe.backbone.discriminator.modules()
                 if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d)))  # D's first layer
    hook = layer.register_forward_hook(lambda m, i, out: dtypes.append(out.dtype))
    before = [p.detach().clone() for p in pipe.backbone.parameters()]
    logs = pipe.train(progress=False)
    hook.remove()
    moved = sum(float((p.detach() - b).abs().sum()) for p, b in zip(pipe.backbone.parameters(), before))
    return pipe, logs, set(dtypes), moved


@pytest.mark.parametrize("which", ["ring", "digits"])
def test_bf16_autocast_trains_the_ring_and_digits_stacks(which, ring_spec, digits_spec):
    spec = ring_spec if which == "ring" else digits_spec
    pipe, logs, dtypes, moved = _train(spec, "bf16", steps=6)
    assert dtypes == {torch.bfloat16}  # D ran in bf16 ...
    assert all(p.dtype == torch.float32 for p in pipe.backbone.parameters())  # ... weights fp32
    assert moved > 0 and all(torch.isfinite(torch.tensor(v)) for v in logs.values()), logs
    _, logs32, dtypes32, _ = _train(spec, "fp32", steps=6)
    assert dtypes32 == {torch.float32}
    # six steps in bf16 land where fp32 lands, up to bf16's rounding
    assert logs["loss/d"] == pytest.approx(logs32["loss/d"], rel=0.05)


def test_fp16_with_gradient_scaler_trains_digits(digits_spec):
    pipe, logs, dtypes, moved = _train(digits_spec, "fp16", steps=3)
    assert dtypes == {torch.float16} and moved > 0
    scalers = pipe.trainer.precision._scalers
    assert len(scalers) == 2 and all(s.get_scale() > 1 for s in scalers.values())


def _cosine(a: list[torch.Tensor], b: list[torch.Tensor]) -> float:
    fa, fb = torch.cat([t.flatten() for t in a]), torch.cat([t.flatten() for t in b])
    return float(torch.nn.functional.cosine_similarity(fa, fb, dim=0))


def _penalty_and_grads(fn, params, precision: str):
    torch.manual_seed(5)
    with Precision(precision, torch.device(TEST_DEVICE)).autocast():
        value = fn()
    grads = torch.autograd.grad(value, params, allow_unused=True)
    return float(value.detach()), [torch.zeros_like(p) if g is None else g for p, g in zip(params, grads)]


def _assert_close_to_fp32(fn, params, mode: str, *, cosine: float) -> None:
    """``fn()`` under ``mode`` autocast: value within 5% of fp32's, parameter gradient aligned."""
    v32, g32 = _penalty_and_grads(fn, params, "fp32")
    value, grads = _penalty_and_grads(fn, params, mode)
    assert value == pytest.approx(v32, rel=0.05)
    assert _cosine(grads, g32) > cosine


@pytest.mark.parametrize("mode", ["bf16", "fp16"])
@pytest.mark.parametrize("name", ["gp", "r1"])
def test_double_backward_penalties_under_autocast_stay_close_to_fp32(name, mode, digits_spec):
    pipe = Pipeline.from_spec(digits_spec, device=TEST_DEVICE)
    D = pipe.backbone.discriminator
    real = pipe.real_data()[0][:16].to(pipe.device)
    torch.manual_seed(1)
    fake = pipe.sample(16).to(pipe.device)  # samples come back on the CPU
    if name == "gp":
        def fn():
            return gradient_penalty(D, real, fake, None)
    else:
        def fn():
            return r1_penalty(D, real, None)
    # the second-order gradient D learns from points the same way (fp16 without gantk's float32
    # fallback gave NaNs here: benchmarks/precision_effects.py --raw-fp16)
    _assert_close_to_fp32(fn, [p for p in D.parameters() if p.requires_grad], mode, cosine=0.98)


@pytest.mark.parametrize("mode", ["bf16", "fp16"])
def test_path_length_under_autocast_stays_close_to_fp32(mode):
    spec = tiny_spec("stylegan2", [])
    pipe = Pipeline.from_spec(spec, device=TEST_DEVICE)
    G = pipe.backbone.generator
    torch.manual_seed(2)
    z = pipe.backbone.sample_latent(8)

    def fn():  # as PathLength.g_terms computes it
        with float32_under_fp16():
            img, ws = G(z, None, return_ws=True)
            return path_lengths(img, ws).mean()

    _assert_close_to_fp32(fn, [p for p in G.parameters() if p.requires_grad], mode, cosine=0.95)


@pytest.mark.parametrize("mode", ["bf16", "fp16"])
def test_ifgsm_search_under_autocast_moves_z_like_fp32(mode, digits_spec):
    # PyTorch's init: under DCGAN's N(0, 0.02) a width-4 D is flat after 2 steps (L_G = ln 2 to
    # float precision), so one search step could not show a decrease in either precision
    digits_spec["backbone"]["init"] = "pytorch"
    pipe = Pipeline.from_spec(digits_spec, device=TEST_DEVICE)
    bb, loss = pipe.backbone, pipe.loss
    pipe.train(steps=2, progress=False)
    torch.manual_seed(0)
    z0 = bb.sample_latent(32)

    def objective(z):
        return loss.g_loss(bb.discriminator(bb.generator(z, None), None))

    def search(precision: str):
        bb.eval()
        with Precision(precision, torch.device(TEST_DEVICE)).autocast():
            return ifgsm(z0, objective, steps=1, step_size=0.01)

    z32, z16 = search("fp32"), search(mode)
    assert z16.dtype == torch.float32
    assert float((z16 != z0).float().mean()) > 0.99  # every coordinate moves (raw fp16: 8%)
    step16, step32 = (z16 - z0).sign(), (z32 - z0).sign()
    assert float((step16 == step32).float().mean()) > 0.9  # mostly the same signed step
    with torch.no_grad():
        assert float(objective(z16)) < float(objective(z0))  # and it lowers L_G as in fp32


def test_channels_last_trains_to_the_same_losses(digits_spec):
    _, logs, _, _ = _train(digits_spec, "fp32", steps=2)
    pipe, logs_cl, _, _ = _train(digits_spec, "fp32", steps=2, channels_last=True)
    conv = next(m for m in pipe.backbone.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    # CUDA picks other conv algorithms per memory format (TF32 included): close, not equal
    rel = 1e-4 if TEST_DEVICE == "cpu" else 5e-3
    for key, value in logs.items():
        assert logs_cl[key] == pytest.approx(value, rel=rel), key


@pytest.mark.slow
def test_compile_trains_and_refuses_double_backward_clearly(digits_spec):
    from gantk.base.errors import SpecError

    _, logs, _, _ = _train(digits_spec, "fp32", steps=2)
    pipe, logs_c, _, _ = _train(digits_spec, "fp32", steps=2, compile=True)
    assert set(pipe.backbone.state_dict()) == set(  # names unchanged: checkpoints load
        Pipeline.from_spec(digits_spec, device=TEST_DEVICE).backbone.state_dict())
    for key, value in logs.items():
        assert logs_c[key] == pytest.approx(value, rel=1e-3), key
    spec = copy.deepcopy(digits_spec)
    spec["stack"] += " + gp"
    with pytest.raises(SpecError, match="train.compile"):
        _train(spec, "fp32", steps=1, compile=True)


@pytest.mark.parametrize("extra, named", [(" + gp", "gp"), (" + r1", "r1")])
def test_compile_refuses_double_backward_penalties_before_building(extra, named, digits_spec):
    # refused from the registry's declaration, before any compilation or training step: how
    # PyTorch itself fails differs by device (CPU: "double backward"; CUDA under torch 2.11: an
    # in-place modification error in the first backward)
    from gantk.base.errors import SpecError

    spec = copy.deepcopy(digits_spec)
    spec["stack"] += extra
    spec["train"]["compile"] = True
    with pytest.raises(SpecError, match="train.compile") as info:
        Pipeline.from_spec(spec, device=TEST_DEVICE)
    assert named in str(info.value) and "compile = false" in info.value.paragraph()
