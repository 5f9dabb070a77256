"""A small StyleGAN2 (Karras et al. 2020), written from the paper and the official code's structure
(no gantk imports): mapping net, 4x4 constant, modulated/demodulated convs as one grouped conv per
batch (the official fused form, rosinality's default), noise with one strength per layer, skip
toRGBs, residual D with minibatch stddev. Equalised learning rate everywhere. No style mixing and
no path-length term (the parity rows train both sides with R1 only).

Resampling is the references' arithmetic (rosinality's ModulatedConv2d / ConvLayer / Upsample,
NVlabs' conv2d_resample), with the [1,3,3,1] filter as a depthwise conv in place of upfirdn2d:
G's upsampling conv is a stride-2 transposed conv followed by the filter (gain 4, padding 1);
D's downsampling conv blurs at full resolution (padding 2 for 3x3, 1 for 1x1) and convolves with
stride 2; the toRGB skip is upsampled by zero insertion + filter (padding (2, 1))."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

#: 2: the references' resampling (transposed conv + filter up, filter + stride-2 conv down, issue 31);
#: 1 (before): filter-then-conv up, filter-decimate-conv down. Parity results store it per row.
VERSION = 2
_K = torch.tensor([1.0, 3.0, 3.0, 1.0])


def _fir(c: int, gain: float, like: torch.Tensor) -> torch.Tensor:
    k = torch.outer(_K, _K).to(like)
    return (k / k.sum() * gain).expand(c, 1, 4, 4)


def up(x):  # zero-stuffing + filter, written as a transposed conv; crop to 2H
    c = x.shape[1]
    y = F.conv_transpose2d(x, _fir(c, 4.0, x), stride=2, groups=c)  # size 2H + 2
    return y[:, :, 1:-1, 1:-1]


def blur(x, pad, gain=1.0):  # upfirdn2d(x, f, pad=(pad, pad)) for a symmetric f
    return F.conv2d(F.pad(x, (pad,) * 4), _fir(x.shape[1], gain, x), groups=x.shape[1])


class ELinear(nn.Module):
    def __init__(self, a, b, bias_init=0.0, act=False, lr_mul=1.0):
        super().__init__()
        self.w = nn.Parameter(torch.randn(b, a) / lr_mul)
        self.b = nn.Parameter(torch.full((b,), bias_init))
        self.scale, self.act, self.lr_mul = lr_mul / math.sqrt(a), act, lr_mul

    def forward(self, x):
        y = F.linear(x, self.w * self.scale, self.b * self.lr_mul)
        return F.leaky_relu(y, 0.2) * math.sqrt(2) if self.act else y


class ModConv(nn.Module):
    """``fused``: per-sample weights and one grouped conv (rosinality's default, NVlabs' in eval
    mode); otherwise conv(x * s, w) * d (NVlabs' form in training, rosinality's fused=False)."""

    def __init__(self, a, b, k, sdim, demod=True, upsample=False, fused=True):
        super().__init__()
        self.w = nn.Parameter(torch.randn(1, b, a, k, k))
        self.scale, self.demod, self.upsample, self.pad = 1 / math.sqrt(a * k * k), demod, upsample, k // 2
        self.affine = ELinear(sdim, a, bias_init=1.0)
        self.fused = fused

    def forward(self, x, w):
        B, C, H, W = x.shape
        s = self.affine(w)
        if not self.fused:
            wt = self.w[0] * self.scale
            x = x * s[:, :, None, None]
            out = (F.conv_transpose2d(x, wt.transpose(0, 1), stride=2) if self.upsample
                   else F.conv2d(x, wt, padding=self.pad))
            if self.demod:
                out = out * torch.rsqrt(s.pow(2) @ wt.pow(2).sum((2, 3)).t() + 1e-8)[:, :, None, None]
            return blur(out, 1, gain=4.0) if self.upsample else out
        wt = self.w * self.scale * s[:, None, :, None, None]  # (B, out, in, k, k)
        if self.demod:
            wt = wt * torch.rsqrt(wt.pow(2).sum((2, 3, 4), keepdim=True) + 1e-8)
        if self.upsample:  # transposed conv (2H + 1), then the filter: 2H
            wt = wt.transpose(1, 2).reshape(B * C, -1, *wt.shape[3:])
            out = F.conv_transpose2d(x.reshape(1, B * C, H, W), wt, stride=2, groups=B)
            return blur(out.view(B, -1, *out.shape[2:]), 1, gain=4.0)
        out = F.conv2d(x.reshape(1, B * C, H, W), wt.reshape(-1, C, *wt.shape[3:]), padding=self.pad, groups=B)
        return out.view(B, -1, H, W)


class Layer(nn.Module):
    def __init__(self, a, b, sdim, upsample=False):
        super().__init__()
        self.conv = ModConv(a, b, 3, sdim, upsample=upsample)
        self.noise = nn.Parameter(torch.zeros(()))
        self.bias = nn.Parameter(torch.zeros(1, b, 1, 1))

    def forward(self, x, w):
        x = self.conv(x, w)
        x = x + self.noise * torch.randn(x.shape[0], 1, *x.shape[2:], device=x.device)
        return F.leaky_relu(x + self.bias, 0.2) * math.sqrt(2)


class Generator(nn.Module):
    def __init__(self, size, channels, latent, ch, n_mlp=2, fused=True):
        super().__init__()
        self.mapping = nn.Sequential(*(ELinear(latent, latent, act=True, lr_mul=0.01) for _ in range(n_mlp)))
        self.const = nn.Parameter(torch.randn(1, ch, 4, 4))
        n = int(math.log2(size)) - 2
        self.first = Layer(ch, ch, latent)
        self.rgbs = nn.ModuleList(ModConv(ch, channels, 1, latent, demod=False) for _ in range(n + 1))
        self.ups = nn.ModuleList(Layer(ch, ch, latent, upsample=True) for _ in range(n))
        self.convs = nn.ModuleList(Layer(ch, ch, latent) for _ in range(n))
        for m in self.modules():
            if isinstance(m, ModConv):
                m.fused = fused

    def forward(self, z):
        z = z * torch.rsqrt(z.pow(2).mean(1, keepdim=True) + 1e-8)
        w = self.mapping(z)
        x = self.first(self.const.expand(z.shape[0], -1, -1, -1), w)
        img = self.rgbs[0](x, w)
        for u, c, rgb in zip(self.ups, self.convs, self.rgbs[1:]):
            x = c(u(x, w), w)
            img = up(img) + rgb(x, w)
        return img


class EConv(nn.Module):
    """Equalised conv; ``down``: blur with padding ((4 - 2) + (k - 1)) / 2, then stride 2."""

    def __init__(self, a, b, k, act=True, bias=True, down=False):
        super().__init__()
        self.w = nn.Parameter(torch.randn(b, a, k, k))
        self.b = nn.Parameter(torch.zeros(b)) if bias else None
        self.scale, self.act, self.down = 1 / math.sqrt(a * k * k), act, down
        self.pad, self.blur_pad = (0, (2 + k - 1) // 2) if down else (k // 2, 0)

    def forward(self, x):
        if self.down:
            x = blur(x, self.blur_pad)
        y = F.conv2d(x, self.w * self.scale, self.b, stride=2 if self.down else 1, padding=self.pad)
        return F.leaky_relu(y, 0.2) * math.sqrt(2) if self.act else y


class Discriminator(nn.Module):
    def __init__(self, size, channels, ch):
        super().__init__()
        n = int(math.log2(size)) - 2
        self.frgb = EConv(channels, ch, 1)
        self.blocks = nn.ModuleList(nn.ModuleList([EConv(ch, ch, 3), EConv(ch, ch, 3, down=True),
                                                   EConv(ch, ch, 1, act=False, bias=False, down=True)])
                                    for _ in range(n))
        self.final = EConv(ch + 1, ch, 3)
        self.fc1, self.fc2 = ELinear(ch * 16, ch, act=True), ELinear(ch, 1)

    def forward(self, x):
        x = self.frgb(x)
        for c1, c2, skip in self.blocks:
            x = (c2(c1(x)) + skip(x)) / math.sqrt(2)
        B, C, H, W = x.shape
        g = min(4, B)
        while B % g:
            g -= 1
        s = x.view(g, -1, C, H, W)
        s = (s - s.mean(0)).pow(2).mean(0).add(1e-8).sqrt().mean((1, 2, 3))  # (B / g,)
        s = s.view(-1, 1, 1, 1).repeat(g, 1, H, W)
        x = self.final(torch.cat([x, s], 1))
        return self.fc2(self.fc1(x.flatten(1))).squeeze(1)
