"""StyleGAN2's layers (Karras et al. 2020) in plain PyTorch, without custom CUDA ops.

* Equalised learning rate (Karras et al. 2018): weights are stored as N(0, 1) and multiplied by
  ``1/sqrt(fan_in)`` at run time, so Adam's per-parameter step moves every layer at the same speed.
* The fused leaky ReLU is ``leaky_relu(x + b, 0.2) * sqrt(2)``; the gain sqrt(2) keeps activations'
  second moment at 1 through the nonlinearity.
* Modulated convolution: input channels scaled by the style ``s``, then each output channel's
  weights demodulated to unit L2 norm (``rsqrt(sum w'^2 + 1e-8)``), which replaces AdaIN's
  instance normalisation. Computed as conv(x * s, w) * d, the non-fused form, which equals the
  grouped convolution on modulated weights and runs as one ordinary convolution.
* Resampling (``resample``): ``"blur"`` (the default) is the paper's [1,3,3,1] FIR filter: 2x
  upsampling by zero insertion and the filter with gain 4, 2x downsampling by the filter and taking
  every second pixel, written with ordinary depthwise convolutions instead of the custom upfirdn2d
  op (the same arithmetic, slower on GPUs). ``"bilinear"`` is bilinear ``F.interpolate`` up and
  2x2 average pooling down: faster, slightly more aliasing.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

SQRT2 = math.sqrt(2.0)


def fused_leaky_relu(x: Tensor, bias: Tensor | None = None, *, slope: float = 0.2,
                     gain: float = SQRT2) -> Tensor:
    if bias is not None:
        x = x + bias.view(1, -1, *([1] * (x.dim() - 2)))
    return F.leaky_relu(x, slope) * gain


RESAMPLE_MODES = ("blur", "bilinear")
_FIR = (1.0, 3.0, 3.0, 1.0)


def _fir_kernel(x: Tensor, gain: float) -> Tensor:
    """The separable [1,3,3,1] filter, normalised to sum ``gain``, as a depthwise conv weight."""
    k = torch.tensor(_FIR, device=x.device, dtype=x.dtype)
    k2 = torch.outer(k, k)
    k2 = k2 / k2.sum() * gain
    return k2.expand(x.shape[1], 1, 4, 4)


def upsample2x(x: Tensor, mode: str = "blur") -> Tensor:
    """Double the side: zero insertion + [1,3,3,1] filter (gain 4, padding (2, 1) as upfirdn2d
    with up = 2), or bilinear interpolation."""
    if mode == "bilinear":
        return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
    b, c, h, w = x.shape
    up = x.new_zeros(b, c, 2 * h, 2 * w)
    up[:, :, ::2, ::2] = x
    return F.conv2d(F.pad(up, (2, 1, 2, 1)), _fir_kernel(x, 4.0), groups=c)


def downsample2x(x: Tensor, mode: str = "blur") -> Tensor:
    """Halve the side: [1,3,3,1] filter then every second pixel (upfirdn2d with down = 2,
    padding 1), or 2x2 average pooling."""
    if mode == "bilinear":
        return F.avg_pool2d(x, 2)
    return F.conv2d(F.pad(x, (1, 1, 1, 1)), _fir_kernel(x, 1.0), stride=2, groups=x.shape[1])


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
        out = F.linear(x, self.weight * self.scale)
        if self.activation:
            return fused_leaky_relu(out, self.bias)
        return out if self.bias is None else out + self.bias

    def extra_repr(self) -> str:
        return f"{self.weight.shape[1]}, {self.weight.shape[0]}, activation={self.activation}"


class EqualConv2d(nn.Module):
    """A convolution with equalised learning rate (scale 1/sqrt(in * k * k)), 'same' padding."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, *, bias: bool = True) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_ch, in_ch, kernel, kernel))
        self.bias = nn.Parameter(torch.zeros(out_ch)) if bias else None
        self.scale = 1 / math.sqrt(in_ch * kernel * kernel)
        self.padding = kernel // 2

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(x, self.weight * self.scale, self.bias, padding=self.padding)


class ConvLayer(nn.Module):
    """D's layer: optional 2x downsampling (see ``downsample2x``), equalised conv, fused leaky ReLU."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, *, downsample: bool = False,
                 activate: bool = True, bias: bool = True, resample: str = "blur") -> None:
        super().__init__()
        self.downsample, self.activate, self.resample = downsample, activate, resample
        self.conv = EqualConv2d(in_ch, out_ch, kernel, bias=bias and not activate)
        self.act_bias = nn.Parameter(torch.zeros(out_ch)) if bias and activate else None

    def forward(self, x: Tensor) -> Tensor:
        if self.downsample:
            x = downsample2x(x, self.resample)
        x = self.conv(x)
        return fused_leaky_relu(x, self.act_bias) if self.activate else x


class ModulatedConv2d(nn.Module):
    """Modulated (and by default demodulated) convolution; ``upsample`` doubles the side first."""

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

    def forward(self, x: Tensor, w: Tensor) -> Tensor:
        s = self.modulation(w)  # (B, in)
        weight = self.weight * self.scale
        if self.upsample:
            x = upsample2x(x, self.resample)
        out = F.conv2d(x * s[:, :, None, None], weight, padding=self.padding)
        if self.demodulate:
            # sigma_j = sqrt(sum_{i,k} (s_i w_ijk)^2): the std of output j for unit-variance inputs
            # = rsqrt(sum_i s_i^2 * sum_k w_ijk^2 + eps), without materialising B weight tensors
            d = torch.rsqrt(s.pow(2) @ weight.pow(2).sum((2, 3)).t() + self.eps)  # (B, out)
            out = out * d[:, :, None, None]
        return out


class NoiseInjection(nn.Module):
    """Adds per-pixel N(0, 1) noise scaled by a learned per-channel strength (initialised to 0)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.strength = nn.Parameter(torch.zeros(1, channels, 1, 1))

    def forward(self, x: Tensor, noise: Tensor | None = None) -> Tensor:
        if noise is None:
            noise = x.new_empty(x.shape[0], 1, x.shape[2], x.shape[3]).normal_()
        return x + self.strength * noise


class StyledConv(nn.Module):
    """Modulated conv, noise, bias and fused leaky ReLU: one layer of the synthesis network."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, *, style_dim: int, upsample: bool = False,
                 resample: str = "blur") -> None:
        super().__init__()
        self.conv = ModulatedConv2d(in_ch, out_ch, kernel, style_dim=style_dim, upsample=upsample,
                                    resample=resample)
        self.noise = NoiseInjection(out_ch)
        self.bias = nn.Parameter(torch.zeros(out_ch))

    def forward(self, x: Tensor, w: Tensor, noise: Tensor | None = None) -> Tensor:
        return fused_leaky_relu(self.noise(self.conv(x, w), noise), self.bias)


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
