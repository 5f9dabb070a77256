"""StyleGAN2's resampling convolutions, noise inputs and weight layout against the references'
arithmetic (issue 31), written out by hand on known tensors.

The hand computations are the index formulas of upfirdn2d and of the strided / transposed
convolutions as sums over taps (one 1-D matrix per tap, applied along each axis), independent of
how gantk calls F.conv_transpose2d, F.pad and F.conv2d."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from gantk import CheckpointError, Pipeline
from gantk.base.interfaces import DataInfo
from gantk.cli.app import main
from gantk_plugins.backbones import stylegan2
from gantk_plugins.backbones.stylegan2_layers import (ConvLayer, ModulatedConv2d, NoiseInjection,
                                                      downsample2x, upsample2x)
from tiny import tiny_spec

F1 = torch.tensor([1.0, 3.0, 3.0, 1.0], dtype=torch.float64) / 8  # one axis of the 2-D filter


def _tap_matrices(n_out: int, n_in: int, taps: int, index) -> torch.Tensor:
    """(taps, n_out, n_in): M[k, P, q] = sum_j F1[j] [q == index(P, k, j)] (out-of-range q: 0)."""
    m = torch.zeros(taps, n_out, n_in, dtype=torch.float64)
    for k in range(taps):
        for p in range(n_out):
            for j in range(4):
                q = index(p, k, j)
                if 0 <= q < n_in:
                    m[k, p, q] += F1[j]
    return m


def _apply(x: torch.Tensor, w: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """sum_{i, ky, kx} w[o, i, ky, kx] * A[ky] @ x[b, i] @ A[kx]^T."""
    return torch.einsum("oiyx,yPq,biqr,xQr->boPQ", w, a, x, a)


def test_upsampling_conv_is_transposed_conv_then_filter():
    """rosinality / NVlabs: conv_transpose (stride 2, 3x3) then upfirdn2d(pad (1, 1), gain 4):
    out[P] = sum_{q,k,j} x[q] w[k] f[j] over 2q + k = P - 1 + j; in 2-D with f's gain 4 = 2 per
    axis. Modulation and demodulation are per-channel scales around it."""
    torch.manual_seed(0)
    m = ModulatedConv2d(3, 2, 3, style_dim=4, upsample=True).double()
    x, w = torch.randn(2, 3, 5, 5, dtype=torch.float64), torch.randn(2, 4, dtype=torch.float64)
    s = m.modulation(w)
    weight = m.weight * m.scale
    a = _tap_matrices(10, 5, 3, lambda p, k, j: (p - 1 + j - k) // 2 if (p - 1 + j - k) % 2 == 0 else -1) * 2
    d = torch.rsqrt((weight.unsqueeze(0) * s[:, None, :, None, None]).pow(2).sum((2, 3, 4)) + 1e-8)
    expected = _apply(x * s[:, :, None, None], weight, a) * d[:, :, None, None]
    for fused in (False, True):
        m.fused = fused
        torch.testing.assert_close(m(x, w), expected, atol=1e-10, rtol=0)
    assert m(x, w).shape == (2, 2, 10, 10)


def test_transposed_upsampling_equals_upsample_then_conv_with_the_flipped_kernel_inside():
    """The same linear map as upfirdn2d upsampling (zero insertion + filter) followed by a 3x3 conv
    at double resolution with the kernel flipped, at a quarter of the multiply-adds; the two
    differ only on the one-pixel border, where upsample-then-conv pads the blurred image with
    zeros instead of the blur's own tail."""
    torch.manual_seed(1)
    m = ModulatedConv2d(4, 3, 3, style_dim=4, upsample=True, demodulate=False).double()
    x, w = torch.randn(2, 4, 6, 6, dtype=torch.float64), torch.randn(2, 4, dtype=torch.float64)
    s = m.modulation(w)
    old = F.conv2d(upsample2x(x * s[:, :, None, None]), (m.weight * m.scale).flip(2, 3), padding=1)
    new = m(x, w)
    torch.testing.assert_close(new[..., 1:-1, 1:-1], old[..., 1:-1, 1:-1], atol=1e-10, rtol=0)
    assert (new[..., 0, :] - old[..., 0, :]).abs().max() > 1e-3  # the border is the references'


@pytest.mark.parametrize("kernel", [3, 1])
def test_downsampling_conv_is_filter_at_full_resolution_then_stride_2(kernel):
    """ConvLayer(downsample): upfirdn2d(pad = ((4-2)+(k-1)) split ceil/floor) then a stride-2 conv
    without padding: out[P] = sum_{k,j} x[2P + k + j - p0] w[k] f[j]."""
    torch.manual_seed(2)
    layer = ConvLayer(3, 2, kernel, downsample=True, activate=False, bias=False).double()
    x = torch.randn(2, 3, 8, 8, dtype=torch.float64)
    p0 = (2 + kernel - 1 + 1) // 2
    a = _tap_matrices(4, 8, kernel, lambda p, k, j: 2 * p + k + j - p0)
    expected = _apply(x, layer.conv.weight * layer.conv.scale, a)
    torch.testing.assert_close(layer(x), expected, atol=1e-10, rtol=0)
    if kernel == 1:  # the 1x1 skip: the same as filtering with stride 2, then the 1x1 conv
        torch.testing.assert_close(layer(x), F.conv2d(downsample2x(x), layer.conv.weight * layer.conv.scale),
                                   atol=1e-10, rtol=0)


def test_bilinear_resampling_keeps_its_own_path():
    torch.manual_seed(3)
    layer = ConvLayer(2, 2, 3, downsample=True, activate=False, bias=False, resample="bilinear")
    x = torch.randn(1, 2, 8, 8)
    torch.testing.assert_close(layer(x), layer.conv(F.avg_pool2d(x, 2)))
    m = ModulatedConv2d(2, 2, 3, style_dim=2, upsample=True, resample="bilinear", demodulate=False)
    w = torch.randn(1, 2)
    ref = F.conv2d(upsample2x(x * m.modulation(w)[:, :, None, None], "bilinear"), m.weight * m.scale,
                   padding=1)
    torch.testing.assert_close(m(x, w), ref)


def test_noise_is_one_strength_per_layer_with_three_modes():
    torch.manual_seed(4)
    n = NoiseInjection(4)
    assert n.strength.shape == () and n.noise_const.shape == (4, 4)
    x = torch.zeros(2, 3, 4, 4)
    with torch.no_grad():
        n.strength.fill_(0.5)
    const = n(x, "const")
    torch.testing.assert_close(const, (0.5 * n.noise_const).expand(2, 3, 4, 4))
    assert torch.equal(n(x, "none"), x)
    r1, r2 = n(x, "random"), n(x, "random")
    assert not torch.equal(r1, r2)
    assert torch.equal(r1[:, 0], r1[:, 2])  # one map per sample, shared by the channels
    assert "noise_const" in n.state_dict()


def _generator(**extra):
    params = stylegan2.StyleGAN2Params(latent_dim=8, style_dim=8, n_mlp=2, channel_base=64,
                                       channel_max=8, **extra)
    bb = stylegan2.build(params, DataInfo(shape=(1, 16, 16)))
    for m in bb.generator.modules():
        if isinstance(m, NoiseInjection):
            torch.nn.init.constant_(m.strength, 0.3)
    return bb


def test_generator_noise_modes_and_fused_forms_agree():
    torch.manual_seed(5)
    bb = _generator()
    G = bb.generator.eval()
    z = torch.randn(3, 8)
    with torch.no_grad():
        random1, random2 = G(z), G(z)
        assert not torch.equal(random1, random2)  # eval default: random noise, as NVlabs' metrics
        with bb.noise_mode(G, "const"):
            c1, c2 = G(z), G(z)
        assert torch.equal(c1, c2) and not torch.allclose(c1, G(z, noise_mode="none"))
        assert G.noise_mode == "random"  # restored
        unfused = G(z, noise_mode="const")
        G.fused_modconv = "never"
        torch.testing.assert_close(G(z, noise_mode="const"), unfused, atol=1e-5, rtol=0)
        G.fused_modconv = "always"
        torch.testing.assert_close(G(z, noise_mode="const"), unfused, atol=1e-5, rtol=0)
    G.train()  # training mode draws random noise whatever noise_mode says
    G.noise_mode = "const"
    assert not torch.equal(G.synthesis(G.mapping_ws(z)), G.synthesis(G.mapping_ws(z)))


def test_old_weight_layout_is_refused_with_one_sentence():
    torch.manual_seed(6)
    G = _generator().generator
    state = G.state_dict()
    old = {k: v for k, v in state.items() if not k.endswith("noise_const")}
    for k in [k for k in old if k.endswith("noise.strength")]:
        old[k] = torch.zeros(1, 8, 1, 1)
    with pytest.raises(CheckpointError, match="earlier version of gantk") as info:
        G.load_state_dict(old)
    assert info.value.where == "conv1.noise.strength" and "version that trained it" in info.value.fix
    G.load_state_dict(state)  # today's layout loads


def test_old_checkpoint_gives_the_checkpoint_paragraph(tmp_path, capsys):
    """A run directory whose checkpoint has the pre-issue-31 layout: `gantk sample` and
    Pipeline.load say that an earlier gantk made it, with exit status 2 and no traceback."""
    from safetensors.torch import load_file, save_file
    from safetensors import safe_open

    from gantk.store.checkpoint import tensor_digest

    pipe = Pipeline.from_spec(tiny_spec("stylegan2", [], device="cpu"))
    pipe.train(steps=1, progress=False)
    run = tmp_path / "run"
    pipe.save(run)
    files = sorted(run.rglob("*.safetensors"))
    assert files
    for path in files:
        tensors = load_file(path)
        with safe_open(path, "pt") as f:
            meta = dict(f.metadata())
        tensors = {k: v for k, v in tensors.items() if not k.endswith("noise_const")}
        for k in [k for k in tensors if k.endswith("noise.strength")]:
            tensors[k] = torch.zeros(1, 8, 1, 1)
        meta["sha256"] = tensor_digest(tensors)
        save_file(tensors, path, metadata=meta)
    with pytest.raises(CheckpointError, match="earlier version of gantk"):
        Pipeline.load(run)
    assert main(["sample", str(run), "--n", "2", "--out", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err
    assert "earlier version of gantk" in err and "Traceback" not in err
    assert "gantk version that trained it" in err and "spec it was trained with" not in err


def test_a_few_steps_fit_g_and_d_through_the_new_resampling():
    """Gradients flow through the transposed-conv upsampling and the strided downsampling: thirty
    Adam steps fit G to four fixed digits (MSE) and D to tell them from G's start images (logistic
    loss), each loss falling to well under half its start (tiny nets, about a second)."""
    torch.manual_seed(8)
    pipe = Pipeline.from_spec(tiny_spec("stylegan2", [], device="cpu"))
    bb, real = pipe.backbone, pipe.real_data()[0][:4]
    G, D = bb.generator.train(), bb.discriminator.train()
    G.mixing_prob = 0.0
    z = torch.randn(4, bb.latent_dim)
    with torch.no_grad():
        fake = G(z, noise_mode="none")
    losses = {"g": [], "d": []}
    opt_g = torch.optim.Adam(G.parameters(), lr=1e-2, betas=(0.0, 0.99))
    opt_d = torch.optim.Adam(D.parameters(), lr=1e-2, betas=(0.0, 0.99))
    for _ in range(30):
        g_loss = F.mse_loss(G(z, noise_mode="none"), real)
        d_loss = F.softplus(-D(real)).mean() + F.softplus(D(fake)).mean()
        opt_g.zero_grad(), opt_d.zero_grad()
        (g_loss + d_loss).backward()
        opt_g.step(), opt_d.step()
        losses["g"].append(float(g_loss.detach())), losses["d"].append(float(d_loss.detach()))
    assert losses["g"][-1] < 0.5 * losses["g"][0], losses["g"]
    assert losses["d"][-1] < 0.5 * losses["d"][0], losses["d"]
