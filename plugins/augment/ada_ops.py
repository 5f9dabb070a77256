"""The differentiable augmentation pipeline of ADA (Karras, Aittala, Hellsten, Laine, Lehtinen, Aila
2020, "Training Generative Adversarial Networks with Limited Data", Sec. 2.3 and Appendix B),
re-implemented from the paper's description and checked against the parameter distributions of
NVlabs' ``training/augment.py`` (no code copied: that licence is non-commercial).

Every augmentation is applied to each image independently with probability ``p`` (the strength
ADA's controller adjusts), with the paper's distributions:

* blit: x-flip, rotation by a multiple of 90 degrees, integer translation up to 1/8 of the side;
* geom: isotropic scaling ``2^N(0, 0.2^2)``, rotation uniform in (-180, 180] degrees applied twice
  with probability ``1 - sqrt(1 - p)`` each (so that one of the two happens with probability p),
  anisotropic scaling ``2^N(0, 0.2^2)``, fractional translation ``N(0, 0.125^2)`` of the side;
* color: brightness ``+N(0, 0.2^2)``, contrast ``*2^N(0, 0.5^2)``, luma flip, hue rotation about
  the luma axis, saturation ``*2^N(0, 1)`` (hue and saturation only on RGB images).

The geometric ones are composed into one 3x3 matrix per image and executed once: the image is
padded by reflection, upsampled 2x with the ``sym6`` wavelet low-pass filter, resampled bilinearly
and low-pass filtered back down, which keeps the result free of aliasing (the paper's Appendix
B.2). The colour ones are composed into one 4x4 matrix. Images that draw no augmentation of a
group are passed through unchanged (bit for bit), so at ``p = 0`` the pipeline is the identity.
Built on torch's ``conv2d`` (the FIR filters), ``affine_grid`` and ``grid_sample``; every
random draw uses the global torch RNG.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

#: the sym6 wavelet's low-pass decomposition filter (Daubechies' symlet of order 6, 12 taps)
SYM6 = (0.015404109327027373, 0.0034907120842174702, -0.11799011114819057, -0.048311742585633,
        0.4910559419267466, 0.787641141030194, 0.3379294217276218, -0.07263752278646252,
        -0.021060292512300564, 0.04472490177066578, 0.0017677118642428036, -0.007800708325034148)

#: the augmentations of each NVlabs ``--augpipe`` preset this plugin implements
PIPELINES: dict[str, tuple[str, ...]] = {
    "blit": ("xflip", "rotate90", "xint"),
    "geom": ("scale", "rotate", "aniso", "xfrac"),
    "color": ("brightness", "contrast", "lumaflip", "hue", "saturation"),
    "bg": ("xflip", "rotate90", "xint", "scale", "rotate", "aniso", "xfrac"),
    "bgc": ("xflip", "rotate90", "xint", "scale", "rotate", "aniso", "xfrac",
            "brightness", "contrast", "lumaflip", "hue", "saturation"),
}
GEOMETRIC = ("xflip", "rotate90", "xint", "scale", "rotate", "aniso", "xfrac")
COLOUR = ("brightness", "contrast", "lumaflip", "hue", "saturation")

# the paper's ranges (NVlabs' AugmentPipe defaults)
XINT_MAX, SCALE_STD, ANISO_STD, XFRAC_STD = 0.125, 0.2, 0.2, 0.125
BRIGHTNESS_STD, CONTRAST_STD, SATURATION_STD = 0.2, 0.5, 1.0


# ----------------------------------------------------------------------------- matrices


def _eye(n: int, b: int, device: torch.device) -> Tensor:
    return torch.eye(n, device=device).expand(b, n, n).clone()


def translate2d(tx: Tensor, ty: Tensor) -> Tensor:
    m = _eye(3, len(tx), tx.device)
    m[:, 0, 2], m[:, 1, 2] = tx, ty
    return m


def scale2d(sx: Tensor, sy: Tensor) -> Tensor:
    m = _eye(3, len(sx), sx.device)
    m[:, 0, 0], m[:, 1, 1] = sx, sy
    return m


def rotate2d(theta: Tensor) -> Tensor:
    m = _eye(3, len(theta), theta.device)
    c, s = torch.cos(theta), torch.sin(theta)
    m[:, 0, 0], m[:, 0, 1], m[:, 1, 0], m[:, 1, 1] = c, -s, s, c
    return m


def _const(value: float, b: int, device: torch.device) -> Tensor:
    return torch.full((b,), float(value), device=device)


def _gate(values: Tensor, identity: float, prob: float) -> Tensor:
    """``values`` where a uniform draw per image is below ``prob``, else ``identity``."""
    shape = (values.shape[0],) + (1,) * (values.dim() - 1)
    keep = torch.rand(shape, device=values.device) < prob
    return torch.where(keep, values, torch.full_like(values, identity))


def geometric_matrices(b: int, h: int, w: int, p: float, ops: tuple[str, ...],
                       device: torch.device) -> Tensor:
    """(b, 3, 3) inverse transforms: output pixel (centred coordinates) -> input pixel."""

    g = _eye(3, b, device)
    one = _const(1, b, device)
    if "xflip" in ops:
        i = _gate(torch.floor(torch.rand(b, device=device) * 2), 0, p)
        g = g @ scale2d(1 - 2 * i, one)
    if "rotate90" in ops:
        i = _gate(torch.floor(torch.rand(b, device=device) * 4), 0, p)
        g = g @ rotate2d(math.pi / 2 * i)
    if "xint" in ops:
        t = _gate((torch.rand(b, 2, device=device) * 2 - 1) * XINT_MAX, 0, p)
        g = g @ translate2d(-torch.round(t[:, 0] * w), -torch.round(t[:, 1] * h))
    if "scale" in ops:
        s = _gate(torch.exp2(torch.randn(b, device=device) * SCALE_STD), 1, p)
        g = g @ scale2d(1 / s, 1 / s)
    p_rot = 1 - math.sqrt(min(max(1 - p, 0.0), 1.0))  # P(pre or post rotation) = p
    if "rotate" in ops:
        theta = _gate((torch.rand(b, device=device) * 2 - 1) * math.pi, 0, p_rot)
        g = g @ rotate2d(theta)
    if "aniso" in ops:
        s = _gate(torch.exp2(torch.randn(b, device=device) * ANISO_STD), 1, p)
        g = g @ scale2d(1 / s, s)
    if "rotate" in ops:
        theta = _gate((torch.rand(b, device=device) * 2 - 1) * math.pi, 0, p_rot)
        g = g @ rotate2d(theta)
    if "xfrac" in ops:
        t = _gate(torch.randn(b, 2, device=device) * XFRAC_STD, 0, p)
        g = g @ translate2d(-t[:, 0] * w, -t[:, 1] * h)
    return g


def colour_matrices(b: int, channels: int, p: float, ops: tuple[str, ...],
                    device: torch.device) -> Tensor:
    """(b, 4, 4) homogeneous colour transforms: colour_out = C @ colour_in."""

    c4 = _eye(4, b, device)
    eye4 = torch.eye(4, device=device)
    v = torch.tensor([1.0, 1.0, 1.0, 0.0], device=device) / math.sqrt(3)  # the luma axis
    vv = torch.outer(v, v)
    if "brightness" in ops:
        t = _gate(torch.randn(b, device=device) * BRIGHTNESS_STD, 0, p)
        m = _eye(4, b, device)
        m[:, 0, 3], m[:, 1, 3], m[:, 2, 3] = t, t, t
        c4 = m @ c4
    if "contrast" in ops:
        s = _gate(torch.exp2(torch.randn(b, device=device) * CONTRAST_STD), 1, p)
        m = _eye(4, b, device)
        m[:, 0, 0], m[:, 1, 1], m[:, 2, 2] = s, s, s
        c4 = m @ c4
    if "lumaflip" in ops:
        i = _gate(torch.floor(torch.rand(b, 1, 1, device=device) * 2), 0, p)
        c4 = (eye4 - 2 * vv * i) @ c4  # Householder reflection of the luma axis
    if "hue" in ops and channels > 1:
        theta = _gate((torch.rand(b, device=device) * 2 - 1) * math.pi, 0, p)
        c4 = _rotate3d(v, theta) @ c4
    if "saturation" in ops and channels > 1:
        s = _gate(torch.exp2(torch.randn(b, 1, 1, device=device) * SATURATION_STD), 1, p)
        c4 = (vv + (eye4 - vv) * s) @ c4
    return c4


def _rotate3d(v: Tensor, theta: Tensor) -> Tensor:
    """Rotation by ``theta`` about the unit axis ``v`` (Rodrigues), homogeneous 4x4."""
    x, y, z = (float(c) for c in v[:3])
    s, c = torch.sin(theta), torch.cos(theta)
    cc = 1 - c
    m = _eye(4, len(theta), theta.device)
    rows = ((x * x * cc + c, x * y * cc - z * s, x * z * cc + y * s),
            (y * x * cc + z * s, y * y * cc + c, y * z * cc - x * s),
            (z * x * cc - y * s, z * y * cc + x * s, z * z * cc + c))
    for r, row in enumerate(rows):
        for k, value in enumerate(row):
            m[:, r, k] = value
    return m


# ----------------------------------------------------------------------------- execution


def _depthwise(x: Tensor, taps: Tensor, dim: int) -> Tensor:
    """Correlation of every image and channel with ``taps`` along ``dim`` (-1: x, -2: y), no
    border (``valid``), as one depthwise convolution (on CPU 25x faster for 64 small images than
    a batched single-channel convolution such as kornia's ``filter2d_separable``)."""
    b, c, h, w = x.shape
    n = len(taps)
    shape = (b * c, 1, 1, n) if dim == -1 else (b * c, 1, n, 1)
    y = F.conv2d(x.reshape(1, b * c, h, w), taps.to(x.dtype).view(shape[1:]).expand(shape),
                 groups=b * c)
    return y.reshape(b, c, y.shape[-2], y.shape[-1])


def _filter(x: Tensor, taps: Tensor) -> Tensor:
    return _depthwise(_depthwise(x, taps, -1), taps, -2)


def _upsample_1d(x: Tensor, g: Tensor, dim: int) -> Tensor:
    """Zero insertion along ``dim`` then correlation with ``g`` (even length, padded by
    ``len/2`` before and ``len/2 - 1`` after), computed polyphase: the even outputs use the
    even taps, the odd ones the odd taps, on the input itself (no multiplications by zero)."""
    half = len(g) // 2
    pads = {-1: lambda a, z: (a, z, 0, 0), -2: lambda a, z: (0, 0, a, z)}[dim]
    even = _depthwise(F.pad(x, pads(half // 2, half // 2 - 1 + half % 2)), g[0::2], dim)
    odd = _depthwise(F.pad(x, pads(half // 2 - 1 + half % 2, half // 2)), g[1::2], dim)
    out = torch.stack([even, odd], dim=dim)  # (..., n, 2) or (..., n, 2, w)
    shape = list(x.shape)
    shape[dim] *= 2
    return out.reshape(shape)


def upsample2x(x: Tensor, f: Tensor) -> Tensor:
    """Zero insertion then the FIR ``f`` as a convolution with gain 4 (2 per axis):
    ``(H, W) -> (2H, 2W)``, the output aligned as NVlabs' ``upsample2d``."""
    g = f.flip(0) * 2
    return _upsample_1d(_upsample_1d(x, g, -1), g, -2)


def downsample2x(x: Tensor, f: Tensor, crop: int) -> Tensor:
    """The FIR ``f`` (as a correlation) then every second pixel, after cropping ``crop`` pixels
    less the filter's own margin on each side."""
    n = len(f)
    lo, hi = crop - (n - 1) // 2, crop - (n - 2) // 2
    h, w = x.shape[-2:]
    x = x[..., lo:h - hi, lo:w - hi]
    return _filter(x, f)[..., ::2, ::2]


def warp(x: Tensor, g_inv: Tensor, f: Tensor) -> Tensor:
    """Resample ``x`` (b, c, h, w) through the inverse transforms ``g_inv`` (b, 3, 3) without
    aliasing: reflection padding wide enough for every image's corners, 2x upsampling, bilinear
    sampling, 2x downsampling."""

    b, c, h, w = x.shape
    dev = x.device
    cx, cy = (w - 1) / 2, (h - 1) / 2
    corners = torch.tensor([[-cx, -cy, 1], [cx, -cy, 1], [cx, cy, 1], [-cx, cy, 1]],
                           device=dev).t()
    cp = (g_inv @ corners)[:, :2, :]                      # (b, xy, 4) source corners
    pad = len(f) // 4
    reach = cp.permute(1, 0, 2).flatten(1)                # (xy, b*4)
    margin = torch.cat([-reach, reach]).amax(dim=1)       # x0, y0, x1, y1 beyond the centre
    margin = margin + torch.tensor([pad * 2 - cx, pad * 2 - cy] * 2, device=dev)
    margin = margin.clamp(min=0).minimum(torch.tensor([w - 1, h - 1] * 2, device=dev,
                                                      dtype=margin.dtype))
    mx0, my0, mx1, my1 = (int(v) for v in margin.ceil().tolist())
    x = F.pad(x, (mx0, mx1, my0, my1), mode="reflect")
    ones = torch.ones(b, device=dev)
    g_inv = translate2d(ones * (mx0 - mx1) / 2, ones * (my0 - my1) / 2) @ g_inv
    x = upsample2x(x, f)
    g_inv = scale2d(ones * 2, ones * 2) @ g_inv @ scale2d(ones / 2, ones / 2)
    g_inv = translate2d(-ones / 2, -ones / 2) @ g_inv @ translate2d(ones / 2, ones / 2)
    out_h, out_w = (h + pad * 2) * 2, (w + pad * 2) * 2
    g_inv = (scale2d(ones * 2 / x.shape[3], ones * 2 / x.shape[2]) @ g_inv
             @ scale2d(ones * out_w / 2, ones * out_h / 2))
    grid = F.affine_grid(g_inv[:, :2, :].to(x.dtype), [b, c, out_h, out_w], align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return downsample2x(x, f, crop=pad * 2)


def apply_colour(x: Tensor, c4: Tensor) -> Tensor:
    b, c, h, w = x.shape
    flat = x.reshape(b, c, h * w)
    c4 = c4.to(x.dtype)
    if c == 3:
        flat = c4[:, :3, :3] @ flat + c4[:, :3, 3:]
    elif c == 1:  # NVlabs' grey rule: the mean of the three RGB rows
        m = c4[:, :3, :].mean(dim=1, keepdim=True)
        flat = flat * m[:, :, :3].sum(dim=2, keepdim=True) + m[:, :, 3:]
    else:  # pragma: no cover - refused when the stack is built
        raise ValueError(f"colour augmentation needs 1 or 3 channels, not {c}")
    return flat.reshape(b, c, h, w)


def _changed(m: Tensor) -> Tensor:
    eye = torch.eye(m.shape[-1], device=m.device)
    return (m != eye).flatten(1).any(dim=1)


def augment(x: Tensor, p: float, ops: tuple[str, ...]) -> Tensor:
    """ADA's pipeline at strength ``p`` on images ``x`` in [-1, 1] (any range works: the colour
    ops act around 0). Differentiable in ``x``; images drawing no augmentation come back as is."""

    b, c, h, w = x.shape
    dtype = x.dtype
    out = x.float()
    geo = tuple(o for o in ops if o in GEOMETRIC)
    if geo:
        g_inv = geometric_matrices(b, h, w, p, geo, x.device)
        idx = _changed(g_inv).nonzero().flatten()
        if len(idx):
            f = torch.tensor(SYM6, device=x.device)
            f = f / f.sum()
            out = out.index_copy(0, idx, warp(out[idx], g_inv[idx], f))
    col = tuple(o for o in ops if o in COLOUR)
    if col:
        c4 = colour_matrices(b, c, p, col, x.device)
        idx = _changed(c4).nonzero().flatten()
        if len(idx):
            out = out.index_copy(0, idx, apply_colour(out[idx], c4[idx]))
    return out.to(dtype)
