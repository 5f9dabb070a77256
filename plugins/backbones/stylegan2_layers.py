"""StyleGAN2's layers (Karras et al. 2020) in plain PyTorch, without custom CUDA ops.

* Equalised learning rate (Karras et al. 2018): weights are stored as N(0, 1) and multiplied by
  ``1/sqrt(fan_in)`` at run time, so Adam's per-parameter step moves every layer at the same speed.
* The fused leaky ReLU is ``leaky_relu(x + b, 0.2) * sqrt(2)``; the gain sqrt(2) keeps activations'
  second moment at 1 through the nonlinearity.
* Modulated convolution: input channels scaled by the style ``s``, then each output channel's
  weights demodulated to unit L2 norm (``rsqrt(sum w'^2 + 1e-8)``), which replaces AdaIN's
  instance normalisation. Two forms of the same arithmetic: conv(x * s, w) * d (one ordinary
  convolution for the batch) and the fused form of the official code (per-sample weights, one
  grouped convolution with B groups); ``fused`` picks one (``ModulatedConv2d.fused``).
* Resampling with the paper's [1,3,3,1] FIR filter (``resample = "blur"``), as the references
  compute it (NVlabs' conv2d_resample, rosinality's ModulatedConv2d/ConvLayer), with ordinary
  (depthwise) convolutions in place of the custom upfirdn2d op:
  - G's upsampling convolution is a stride-2 transposed convolution (2H + 1 per side) followed by
    the filter with gain 4 and padding 1, i.e. upfirdn2d(pad = (1, 1)): the 3x3 taps run at the
    input resolution, a quarter of the work of a 3x3 convolution at the doubled one;
  - D's downsampling convolution blurs at full resolution (padding (2, 2) for 3x3, (1, 1) for 1x1)
    and then convolves with stride 2 and no padding;
  - the toRGB skip is upsampled by zero insertion and the filter (gain 4, padding (2, 1)),
    upfirdn2d with up = 2.
  ``"bilinear"`` is bilinear ``F.interpolate`` up (then a 3x3 conv at the doubled side) and 2x2
  average pooling down (then the conv): an alternative with slightly more aliasing.
* Noise inputs: one learned scalar strength per layer (initialised to 0), times N(0, 1) per pixel
  (``"random"``), times a fixed per-layer map drawn at construction and stored with the model as a
  buffer (``"const"``, deterministic images), or left out (``"none"``): NVlabs' noise modes.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

SQRT2 = math.sqrt(2.0)
NOISE_MODES = ("const", "random", "none")


def fused_leaky_relu(x: Tensor, bias: Tensor | None = None, *, slope: float = 0.2,
                     gain: float = SQRT2) -> Tensor:
    if bias is not None:
        x = x + bias.view(1, -1, *([1] * (x.dim() - 2)))
    return F.leaky_relu(x, slope) * gain


RESAMPLE_MODES = ("blur", "bilinear")
_FIR = (1.0, 3.0, 3.0, 1.0)


_KERNELS: dict[tuple[Any, ...], Tensor] = {}


def _fir_kernel(x: Tensor, gain: float) -> Tensor:
    """The separable [1,3,3,1] filter, normalised to sum ``gain``, as a depthwise conv weight
    (built once per device, dtype and gain)."""
    key = (x.device, x.dtype, gain)
    k2 = _KERNELS.get(key)
    if k2 is None:
        with torch.inference_mode(False):  # a normal tensor even if first built under inference
            k = torch.tensor(_FIR, device=x.device, dtype=x.dtype)
            k2 = torch.outer(k, k)
            k2 = _KERNELS.setdefault(key, k2 / k2.sum() * gain)
    return k2.expand(x.shape[1], 1, 4, 4)


def blur(x: Tensor, pad: tuple[int, int], *, gain: float = 1.0, stride: int = 1) -> Tensor:
    """The [1,3,3,1] filter (sum ``gain``) with ``pad[0]`` zeros before and ``pad[1]`` after on
    each side, every ``stride``-th output kept: upfirdn2d(x, f, down=stride, pad=pad) (the filter
    is symmetric, so convolution and correlation agree).

    On the CPU the depthwise conv runs on a channels-last copy (the same numbers; oneDNN's
    depthwise kernel is faster on that layout: 1.4x forward and backward at 64 px / 128 channels,
    batch 16, one thread); the result stays channels-last, which the following
    convolutions take as it is."""
    p0, p1 = pad
    if x.device.type == "cpu" and x.dim() == 4:
        x = x.contiguous(memory_format=torch.channels_last)
    return F.conv2d(F.pad(x, (p0, p1, p0, p1)), _fir_kernel(x, gain), stride=stride,
                    groups=x.shape[1])


def upsample2x(x: Tensor, mode: str = "blur") -> Tensor:
    """Double the side: zero insertion + [1,3,3,1] filter (gain 4, padding (2, 1) as upfirdn2d
    with up = 2), or bilinear interpolation."""
    if mode == "bilinear":
        return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
    b, c, h, w = x.shape
    up = x.new_zeros(b, c, 2 * h, 2 * w)
    up[:, :, ::2, ::2] = x
    return blur(up, (2, 1), gain=4.0)


def downsample2x(x: Tensor, mode: str = "blur") -> Tensor:
    """Halve the side: [1,3,3,1] filter then every second pixel (upfirdn2d with down = 2,
    padding 1), or 2x2 average pooling."""
    if mode == "bilinear":
        return F.avg_pool2d(x, 2)
    return blur(x, (1, 1), stride=2)


class EqualLinear(nn.Module):
    """A linear layer with equalised learning rate; ``activation=True`` adds the fused leaky ReLU.

    The mapping network's lr multiplier (0.01) is not folded in here: ``StyleGAN2Backbone``'s
    ``g_param_groups`` gives the mapping parameters lr * lr_mlp, which under Adam moves the weights
    exactly as the official run-time multiplier does."""

    def __init__(self, in_dim: int, out_dim: int, *, bias: bool = True, bias_init: float = 0.0,
                 activation: bool = False) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_dim, in_dim))
        self.bias = nn.Parameter(torch.full((out_dim,), float(bias_init))) if bias else None
        self.scale = 1 / math.sqrt(in_dim)
        self.activation = activation

    def forward(self, x: Tensor) -> Tensor:
        if self.activation:
            return fused_leaky_relu(F.linear(x, self.weight * self.scale), self.bias)
        return F.linear(x, self.weight * self.scale, self.bias)

    def extra_repr(self) -> str:
        return f"{self.weight.shape[1]}, {self.weight.shape[0]}, activation={self.activation}"


class EqualConv2d(nn.Module):
    """A convolution with equalised learning rate (scale 1/sqrt(in * k * k)); 'same' padding by
    default."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, *, bias: bool = True, stride: int = 1,
                 padding: int | None = None) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_ch, in_ch, kernel, kernel))
        self.bias = nn.Parameter(torch.zeros(out_ch)) if bias else None
        self.scale = 1 / math.sqrt(in_ch * kernel * kernel)
        self.stride = stride
        self.padding = kernel // 2 if padding is None else padding

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(x, self.weight * self.scale, self.bias, stride=self.stride,
                        padding=self.padding)


class ConvLayer(nn.Module):
    """D's layer: equalised conv (optionally downsampling 2x), fused leaky ReLU.

    Downsampling with ``resample = "blur"`` is the references': the [1,3,3,1] filter at full
    resolution with padding ((4 - 2) + (k - 1)) split as (ceil, floor), then the conv with stride 2
    and no padding. ``"bilinear"``: 2x2 average pooling, then the conv with 'same' padding."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, *, downsample: bool = False,
                 activate: bool = True, bias: bool = True, resample: str = "blur") -> None:
        super().__init__()
        self.activate, self.resample = activate, resample
        self.blur_pad: tuple[int, int] | None = None
        self.pool = downsample and resample == "bilinear"
        strided = downsample and not self.pool
        if strided:
            p = (len(_FIR) - 2) + (kernel - 1)
            self.blur_pad = ((p + 1) // 2, p // 2)
        self.conv = EqualConv2d(in_ch, out_ch, kernel, bias=bias and not activate,
                                stride=2 if strided else 1, padding=0 if strided else None)
        self.act_bias = nn.Parameter(torch.zeros(out_ch)) if bias and activate else None

    def forward(self, x: Tensor) -> Tensor:
        if self.blur_pad is not None:
            x = blur(x, self.blur_pad)
        elif self.pool:
            x = F.avg_pool2d(x, 2)
        x = self.conv(x)
        return fused_leaky_relu(x, self.act_bias) if self.activate else x


class ModulatedConv2d(nn.Module):
    """Modulated (and by default demodulated) convolution; ``upsample`` doubles the side.

    ``fused`` (set by the generator) selects the grouped-convolution form of the official code
    (per-sample modulated weights, one conv with B groups) over conv(x * s, w) * d; both compute
    the same numbers up to float rounding. With ``resample = "blur"`` the upsampling conv is the
    stride-2 transposed conv followed by the [1,3,3,1] filter (gain 4, padding 1)."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, *, style_dim: int,
                 demodulate: bool = True, upsample: bool = False, eps: float = 1e-8,
                 resample: str = "blur") -> None:
        super().__init__()
        self.resample = resample
        self.weight = nn.Parameter(torch.randn(out_ch, in_ch, kernel, kernel))
        self.scale = 1 / math.sqrt(in_ch * kernel * kernel)
        # the affine map A from w to styles; bias 1 so that every style starts at 1
        self.modulation = EqualLinear(style_dim, in_ch, bias_init=1.0)
        self.demodulate, self.upsample, self.eps = demodulate, upsample, eps
        self.padding = kernel // 2
        self.fused = False

    def forward(self, x: Tensor, w: Tensor) -> Tensor:
        s = self.modulation(w)  # (B, in)
        weight = self.weight * self.scale
        transposed = self.upsample and self.resample == "blur"
        if self.upsample and not transposed:
            x = upsample2x(x, self.resample)
        if self.fused:
            out = self._fused(x, s, weight, transposed)
        else:
            x = x * s[:, :, None, None]
            out = (F.conv_transpose2d(x, weight.transpose(0, 1), stride=2) if transposed
                   else F.conv2d(x, weight, padding=self.padding))
            if self.demodulate:
                # sigma_j = sqrt(sum_{i,k} (s_i w_ijk)^2): the std of output j for unit-variance
                # inputs = rsqrt(sum_i s_i^2 * sum_k w_ijk^2 + eps), without B weight tensors
                d = torch.rsqrt(s.pow(2) @ weight.pow(2).sum((2, 3)).t() + self.eps)  # (B, out)
                out = out * d[:, :, None, None]
        # the filter is linear and per channel, so it commutes with the demodulation scale
        return blur(out, (1, 1), gain=4.0) if transposed else out

    def _fused(self, x: Tensor, s: Tensor, weight: Tensor, transposed: bool) -> Tensor:
        b, c, h, w_ = x.shape
        wt = weight.unsqueeze(0) * s[:, None, :, None, None]  # (B, out, in, k, k)
        if self.demodulate:
            wt = wt * torch.rsqrt(wt.pow(2).sum((2, 3, 4), keepdim=True) + self.eps)
        k, out_ch = wt.shape[-1], wt.shape[1]
        x = x.reshape(1, b * c, h, w_)
        if transposed:
            wt = wt.transpose(1, 2).reshape(b * c, out_ch, k, k)
            out = F.conv_transpose2d(x, wt, stride=2, groups=b)
        else:
            out = F.conv2d(x, wt.reshape(b * out_ch, c, k, k), padding=self.padding, groups=b)
        return out.view(b, out_ch, *out.shape[2:])


class NoiseInjection(nn.Module):
    """Adds per-pixel noise times one learned strength per layer (initialised to 0), as the
    references: ``"random"`` N(0, 1) noise, ``"const"`` the layer's fixed map (a buffer drawn at
    construction, saved with the model), ``"none"`` nothing."""

    def __init__(self, resolution: int) -> None:
        super().__init__()
        self.strength = nn.Parameter(torch.zeros(()))
        self.register_buffer("noise_const", torch.randn(resolution, resolution))

    def forward(self, x: Tensor, mode: str = "random", noise: Tensor | None = None) -> Tensor:
        if noise is None:
            if mode == "none":
                return x
            if mode == "const":
                noise = self.noise_const
            else:
                noise = x.new_empty(x.shape[0], 1, x.shape[2], x.shape[3]).normal_()
        return x + self.strength * noise


class StyledConv(nn.Module):
    """Modulated conv, noise, bias and fused leaky ReLU: one layer of the synthesis network
    (``resolution``: its output side, the size of its constant noise map)."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, *, style_dim: int, resolution: int,
                 upsample: bool = False, resample: str = "blur") -> None:
        super().__init__()
        self.conv = ModulatedConv2d(in_ch, out_ch, kernel, style_dim=style_dim, upsample=upsample,
                                    resample=resample)
        self.noise = NoiseInjection(resolution)
        self.bias = nn.Parameter(torch.zeros(out_ch))

    def forward(self, x: Tensor, w: Tensor, noise: Tensor | None = None, *,
                noise_mode: str = "random") -> Tensor:
        return fused_leaky_relu(self.noise(self.conv(x, w), noise_mode, noise), self.bias)


class ToRGB(nn.Module):
    """A modulated 1x1 conv without demodulation; adds the upsampled skip from the coarser level."""

    def __init__(self, in_ch: int, out_ch: int, *, style_dim: int, resample: str = "blur") -> None:
        super().__init__()
        self.conv = ModulatedConv2d(in_ch, out_ch, 1, style_dim=style_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(1, out_ch, 1, 1))
        self.resample = resample

    def forward(self, x: Tensor, w: Tensor, skip: Tensor | None = None) -> Tensor:
        out = self.conv(x, w) + self.bias
        return out if skip is None else out + upsample2x(skip, self.resample)


class PixelNorm(nn.Module):
    """Normalise each z to unit second moment before the mapping network."""

    def forward(self, x: Tensor) -> Tensor:
        return x * torch.rsqrt(x.pow(2).mean(dim=1, keepdim=True) + 1e-8)


class DResBlock(nn.Module):
    """D's residual block: conv3x3, downsample + conv3x3, with a downsampled 1x1 skip; the sum is
    scaled by 1/sqrt(2) so that the block keeps its input's variance."""

    def __init__(self, in_ch: int, out_ch: int, *, resample: str = "blur") -> None:
        super().__init__()
        self.conv1 = ConvLayer(in_ch, in_ch, 3)
        self.conv2 = ConvLayer(in_ch, out_ch, 3, downsample=True, resample=resample)
        self.skip = ConvLayer(in_ch, out_ch, 1, downsample=True, activate=False, bias=False,
                              resample=resample)

    def forward(self, x: Tensor) -> Tensor:
        return (self.conv2(self.conv1(x)) + self.skip(x)) / SQRT2


def minibatch_stddev(x: Tensor, *, group_size: int = 4, num_features: int = 1) -> Tensor:
    """Append the minibatch standard deviation as extra channels (Karras et al. 2018, 2020).

    Samples are split into groups of ``group_size`` (sample i joins group i mod (B / G)); for each
    group the std over its members is averaged over channels (in ``num_features`` slices) and
    pixels, and broadcast back to each member as ``num_features`` constant maps. A batch that the
    group size does not divide uses the largest group size that does."""

    b, c, h, w = x.shape
    g = min(group_size, b)
    while b % g:
        g -= 1
    y = x.view(g, -1, num_features, c // num_features, h, w)
    y = (y - y.mean(dim=0)).pow(2).mean(dim=0)
    y = (y + 1e-8).sqrt().mean(dim=(2, 3, 4))  # (B / G, F)
    y = y.view(-1, num_features, 1, 1).repeat(g, 1, h, w)
    return torch.cat([x, y], dim=1)
