"""StyleGAN2 (Karras et al. 2020, "Analyzing and Improving the Image Quality of StyleGAN").

G: a mapping network f: z -> w (PixelNorm, ``n_mlp`` equalised layers at lr * ``lr_mlp``), a learned
4x4 constant, per resolution two modulated/demodulated 3x3 convolutions with noise inputs (the first
upsamples; resampling and noise as the references compute them, see stylegan2_layers.py; noise
modes random/const/none as NVlabs', const for pictures), and the skip architecture: every
resolution has a toRGB whose output is added to the upsampled image of the level below. D: the
residual architecture (fromRGB at full resolution, residual blocks scaled by 1/sqrt(2) down to
4x4), minibatch standard deviation (group 4), a 3x3 conv, and two equalised linear layers. D's
features are the output of the first of them.

Training-side pieces: style mixing (in training mode, with probability ``mixing_prob`` a second z
takes over from a random layer on), the running mean of w (``w_avg``, decay 0.995) for the
truncation trick (``truncation_psi``, applied in eval mode only), the optimiser settings of the
paper (optionally with the lazy-regularisation rescaling, ``optimizer_overrides``), the mapping network's lr
multiplier (``g_param_groups``). The path-length regulariser is ``path_length`` in
stylegan2_reg.py; lazy R1 is the ``r1`` regulariser with ``every = 16``; the trainer keeps the EMA
of G, by default the original's (``EMA``: NVlabs' half-life of ``batch * 10 / 32`` kimg with the
0.05 ramp-up, ``gantk.train.ema``) unless the stack sets ``train.ema_*``.

Class-conditional nets embed the label into the mapping network's input (concatenated to z, both
normalised, as in StyleGAN2-ADA) and add a projection ``<embed(y), h> / sqrt(dim)`` in D's epilogue.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
import torch
from torch import Tensor, nn

from gantk import Backbone, CheckpointError, DataInfo, Discriminator, EmaDefault

from .layers import conditional_classes, require_labels
from .stylegan2_layers import (NOISE_MODES, ConvLayer, DResBlock, EqualLinear, ModulatedConv2d,
                               PixelNorm, StyledConv, ToRGB, minibatch_stddev)


#: the EMA of G of stylegan2-ada-pytorch's auto config (train.py: ema_kimg = batch * 10 / 32, ramp-up
#: 0.05; training_loop.py: beta = 0.5 ** (batch / min(ema_kimg * 1000, seen * rampup))); past the
#: ramp-up its per-step decay 0.5 ** (32 / 10000) is rosinality's stylegan2-pytorch ``accum``
EMA = EmaDefault(halflife_kimg_per_batch=10 / 32, rampup=0.05,
                 source="NVlabs stylegan2-ada-pytorch, auto config")


class StyleGAN2Params(BaseModel):
    model_config = ConfigDict(extra="forbid")
    resolution: int | None = Field(None, ge=8, le=1024,
                                   description="image side, a power of two >= 8; default: the data's")
    latent_dim: int = Field(512, ge=1, le=4096, description="size of z")
    style_dim: int = Field(512, ge=1, le=4096, description="size of w (the intermediate latent space W)")
    n_mlp: int = Field(8, ge=1, le=32, description="layers of the mapping network (8 in the paper)")
    lr_mlp: float = Field(0.01, gt=0, description="learning-rate multiplier of the mapping network")
    channel_base: int = Field(32768, ge=1, le=1 << 20, description="channels at resolution r: "
                              "min(channel_base // r, channel_max) (32768 = config F)")
    channel_max: int = Field(512, ge=1, le=2048, description="cap on channels per layer")
    mixing_prob: float = Field(0.9, ge=0, le=1, description="style mixing probability (training mode only)")
    truncation_psi: float = Field(1.0, ge=0, description="truncation in W when sampling (eval mode): "
                                  "w_avg + psi (w - w_avg); 1 turns it off")
    w_avg_beta: float = Field(0.995, ge=0, lt=1, description="decay of the running mean of w")
    mbstd_group: int = Field(4, ge=0, le=1024, description="minibatch-stddev group size; 0 turns it off")
    mbstd_features: int = Field(1, ge=1, le=64, description="minibatch-stddev feature maps")
    betas: tuple[float, float] = Field((0.0, 0.99), description="Adam betas of G and D before the "
                                       "lazy rescaling (the paper's; they replace train.betas)")
    g_reg_every: int = Field(4, ge=0, description="interval of G's lazy regulariser; must equal "
                             "path_length.every (0: no interval is enforced)")
    d_reg_every: int = Field(16, ge=0, description="interval of D's lazy regulariser; must equal "
                             "r1.every (0: no interval is enforced)")
    lazy_rescale: bool = Field(False, description="rescale lr by c = N/(N+1) and betas by ** c for the "
                               "lazy intervals, as the originals do for their separate regularisation "
                               "step; off by default because gantk adds the lazy terms to the ordinary "
                               "step (docs/backbones.md has the measurement)")
    resample: str = Field("blur", pattern="^(blur|bilinear)$",
                          description="2x resampling: blur (the paper's [1,3,3,1] FIR filter) or "
                                      "bilinear (bilinear up, then the conv at the doubled side; 2x2 "
                                      "average-pool down)")
    conditional: bool = Field(False, description="class-conditional: label embedding into the mapping "
                              "network, projection in D's epilogue")
    fused_modconv: str = Field("never", pattern="^(always|never|eval)$",
                               description="the modulated conv as one grouped conv with per-sample "
                                           "weights (the official fused form): never (the default: "
                                           "slower on the CPU, measured), always, or eval (eval mode "
                                           "only, NVlabs' choice for GPUs); the same numbers")


def channels_at(res: int, params: StyleGAN2Params) -> int:
    return max(1, min(params.channel_base // res, params.channel_max))


class MappingNetwork(nn.Module):
    """z (and the label embedding) -> w through ``n_mlp`` equalised layers with leaky ReLU."""

    def __init__(self, *, latent_dim: int, style_dim: int, n_mlp: int, num_classes: int | None) -> None:
        super().__init__()
        self.norm = PixelNorm()
        self.embed = nn.Embedding(num_classes, style_dim) if num_classes else None
        in_dim = latent_dim + (style_dim if num_classes else 0)
        self.layers = nn.Sequential(*(EqualLinear(in_dim if i == 0 else style_dim, style_dim, activation=True)
                                      for i in range(n_mlp)))

    def forward(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        x = self.norm(z)
        if self.embed is not None:
            x = torch.cat([x, self.norm(self.embed(require_labels(y, "generator")))], dim=1)
        return self.layers(x)


class StyleGAN2Generator(nn.Module):
    def __init__(self, *, params: StyleGAN2Params, resolution: int, img_channels: int,
                 num_classes: int | None) -> None:
        super().__init__()
        self.mapping = MappingNetwork(latent_dim=params.latent_dim, style_dim=params.style_dim,
                                      n_mlp=params.n_mlp, num_classes=num_classes)
        self.mixing_prob, self.truncation_psi = params.mixing_prob, params.truncation_psi
        self.w_avg_beta = params.w_avg_beta
        self.num_classes = num_classes
        log_size = int(math.log2(resolution))
        ch = {2**i: channels_at(2**i, params) for i in range(2, log_size + 1)}
        sd = params.style_dim
        self.const = nn.Parameter(torch.randn(1, ch[4], 4, 4))
        self.conv1 = StyledConv(ch[4], ch[4], 3, style_dim=sd, resolution=4)
        self.to_rgb1 = ToRGB(ch[4], img_channels, style_dim=sd)
        self.convs, self.to_rgbs = nn.ModuleList(), nn.ModuleList()
        for i in range(3, log_size + 1):
            res = 2**i
            self.convs.append(StyledConv(ch[res // 2], ch[res], 3, style_dim=sd, resolution=res,
                                         upsample=True, resample=params.resample))
            self.convs.append(StyledConv(ch[res], ch[res], 3, style_dim=sd, resolution=res))
            self.to_rgbs.append(ToRGB(ch[res], img_channels, style_dim=sd, resample=params.resample))
        # one w per layer: conv1, to_rgb1, then (conv_up, conv, to_rgb) per resolution where the
        # to_rgb shares its index with the next level's upsampling conv
        self.num_ws = log_size * 2 - 2
        self.register_buffer("w_avg", torch.zeros(sd))
        #: the noise inputs in eval mode (``gantk sample`` switches it, see
        #: ``StyleGAN2Backbone.noise_mode``); training-mode forwards always draw random noise
        self.noise_mode = "random"
        self.fused_modconv = params.fused_modconv
        self.register_load_state_dict_pre_hook(_refuse_old_layout)

    def _fuse(self) -> None:
        """Pick the modulated conv's form for this forward (``fused_modconv``)."""
        fused = (self.fused_modconv == "always"
                 or (self.fused_modconv == "eval" and not self.training))
        if getattr(self, "_fused_now", None) != fused:
            for m in self.modules():
                if isinstance(m, ModulatedConv2d):
                    m.fused = fused
            self._fused_now = fused

    # -- the two halves of G
    def mapping_ws(self, z: Tensor, y: Tensor | None = None, *, psi: float | None = None) -> Tensor:
        """z -> per-layer w of shape (B, num_ws, style_dim), with truncation towards ``w_avg``."""

        w = self.mapping(z, y)
        if self.training:
            with torch.no_grad():
                self.w_avg.lerp_(w.detach().mean(0), 1 - self.w_avg_beta)
        psi = self.truncation_psi if psi is None else psi
        if psi != 1 and not self.training:
            w = self.w_avg + psi * (w - self.w_avg)
        return w.unsqueeze(1).repeat(1, self.num_ws, 1)

    def synthesis(self, ws: Tensor, noise: list[Tensor | None] | None = None, *,
                  noise_mode: str | None = None) -> Tensor:
        """ws (B, num_ws, style_dim) -> images. ``noise``: per-layer noise maps that replace the
        drawn ones; ``noise_mode``: ``random``, ``const`` or ``none`` (default: ``random`` in
        training mode, else ``self.noise_mode``)."""
        if noise_mode is None:
            noise_mode = "random" if self.training else self.noise_mode
        self._fuse()
        noise = noise or [None] * (1 + len(self.convs))
        x = self.conv1(self.const.expand(ws.shape[0], -1, -1, -1), ws[:, 0], noise[0],
                       noise_mode=noise_mode)
        skip = self.to_rgb1(x, ws[:, 1])
        i = 1
        for conv_up, conv, to_rgb in zip(self.convs[::2], self.convs[1::2], self.to_rgbs):
            x = conv_up(x, ws[:, i], noise[i], noise_mode=noise_mode)
            x = conv(x, ws[:, i + 1], noise[i + 1], noise_mode=noise_mode)
            skip = to_rgb(x, ws[:, i + 2], skip)
            i += 2
        return skip.contiguous()  # the blur may leave channels-last tensors (CPU): images leave G plain

    def style_mix(self, ws: Tensor, z: Tensor, y: Tensor | None) -> Tensor:
        """With probability ``mixing_prob``, layers from a random crossover point on take the w of
        a second latent (a regulariser against correlated adjacent styles)."""

        if self.mixing_prob <= 0 or torch.rand(()) >= self.mixing_prob:
            return ws
        w2 = self.mapping(torch.randn_like(z), y)  # not tracked in w_avg, as in the paper's code
        cut = int(torch.randint(1, self.num_ws, ()))
        return torch.cat([ws[:, :cut], w2.unsqueeze(1).expand(-1, self.num_ws - cut, -1)], dim=1)

    def forward(self, z: Tensor, y: Tensor | None = None, *, return_ws: bool = False,
                psi: float | None = None, noise_mode: str | None = None):
        """``psi`` overrides ``truncation_psi`` for this call (eval mode); ``noise_mode`` the noise
        inputs (see ``synthesis``)."""
        ws = self.mapping_ws(z, y, psi=psi)
        if self.training:
            ws = self.style_mix(ws, z, y)
        img = self.render(ws, noise_mode=noise_mode)
        return (img, ws) if return_ws else img

    def render(self, ws: Tensor, *, noise_mode: str | None = None) -> Tensor:
        img = self.synthesis(ws, noise_mode=noise_mode)
        if not self.training:
            # the synthesis output is linear, as in the paper; samples are clipped to the data range
            # the way the official code clips when it writes images (training sees it unclipped)
            img = img.clamp(-1, 1)
        return img


def _refuse_old_layout(module: nn.Module, state_dict: dict[str, Tensor], prefix: str, *_: Any) -> None:
    """Weights from before the reference-arithmetic layout (issue 31: one noise strength per
    layer, constant noise maps, transposed/strided resampling convs) get one sentence that says
    so, instead of a list of missing keys and shape mismatches."""
    strength = state_dict.get(f"{prefix}conv1.noise.strength")
    if strength is None:
        return  # not a StyleGAN2 generator's weights at all: load_state_dict lists what is wrong
    if strength.dim() != 0 or f"{prefix}conv1.noise.noise_const" not in state_dict:
        raise CheckpointError(
            "these StyleGAN2 weights were made by an earlier version of gantk, whose StyleGAN2 was a "
            "different network (per-channel noise strengths, no constant noise maps, blur-then-conv "
            "resampling; changed to the references' layout in issue 31): this version cannot load "
            "them", where=f"{prefix}conv1.noise.strength",
            fix="train the run again with this version, or sample and evaluate it with the gantk "
                "version that trained it (the checkpoint's provenance names it).")


class StyleGAN2Discriminator(Discriminator):
    def __init__(self, *, params: StyleGAN2Params, resolution: int, img_channels: int,
                 num_classes: int | None, out_dim: int = 1, mbstd_group: int | None = None) -> None:
        super().__init__()
        log_size = int(math.log2(resolution))
        self.from_rgb = ConvLayer(img_channels, channels_at(resolution, params), 1)
        self.blocks = nn.Sequential(*(DResBlock(channels_at(2**i, params), channels_at(2**(i - 1), params),
                                                resample=params.resample)
                                      for i in range(log_size, 2, -1)))
        ch4 = channels_at(4, params)
        self.mbstd_group = params.mbstd_group if mbstd_group is None else mbstd_group
        self.mbstd_features = params.mbstd_features if self.mbstd_group else 0
        if self.mbstd_features and ch4 % self.mbstd_features:
            raise ValueError(f"mbstd_features ({self.mbstd_features}) must divide the 4x4 channel "
                             f"count ({ch4}); set backbone.mbstd_features = 1")
        self.final_conv = ConvLayer(ch4 + self.mbstd_features, ch4, 3)
        self.final_linear = EqualLinear(ch4 * 16, ch4, activation=True)
        self.feature_dim = ch4
        self.out = EqualLinear(ch4, out_dim)
        self.embed = nn.Embedding(num_classes, ch4) if num_classes else None

    def features(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        x = self.blocks(self.from_rgb(x))
        if self.mbstd_group:
            x = minibatch_stddev(x, group_size=self.mbstd_group, num_features=self.mbstd_features)
        return self.final_linear(self.final_conv(x).flatten(1))

    def head(self, h: Tensor, y: Tensor | None = None) -> Tensor:
        out = self.out(h).squeeze(1)
        if self.embed is not None:
            # projection with the 1/sqrt(dim) of StyleGAN2-ADA, so the term starts at unit scale
            out = out + (self.embed(require_labels(y, "discriminator")) * h).sum(1) / math.sqrt(h.shape[1])
        return out


class StyleGAN2Backbone(Backbone):
    prior = "normal"

    def __init__(self, *, params: StyleGAN2Params, data: DataInfo) -> None:
        super().__init__()
        if data.kind != "image" or len(data.shape) != 3:
            raise ValueError("stylegan2 needs image data (C, H, W); use backbone=mlp for points")
        channels, height, width = data.shape
        res = params.resolution or height
        if res != height or height != width:
            raise ValueError(f"stylegan2 builds square {res} px images but the data is {height}x{width}; "
                             f"set data.resolution = {res}")
        if res < 8 or res & (res - 1):
            raise ValueError(f"stylegan2 needs a power-of-two resolution >= 8, the data is {res} px; "
                             "set data.resolution = 16, 32, 64, ... and backbone.resolution to match")
        self.params, self.resolution = params, res
        self.latent_dim = params.latent_dim
        self.image_shape = tuple(data.shape)
        self.num_classes = conditional_classes(params.conditional, data, "stylegan2")
        self.generator = StyleGAN2Generator(params=params, resolution=res, img_channels=channels,
                                            num_classes=self.num_classes)
        self.discriminator = StyleGAN2Discriminator(params=params, resolution=res, img_channels=channels,
                                                    num_classes=self.num_classes)

    @property
    def provides(self) -> frozenset[str]:
        # "w_latents": G's forward accepts return_ws=True (what path_length differentiates against)
        return super().provides | {"w_latents"}

    # -- sampling-time truncation and W-space interpolation (gantk sample / interpolate)
    truncation = "mapping"

    def generate_truncated(self, generator: nn.Module, z: Tensor, y: Tensor | None,
                           psi: float) -> Tensor:
        """``w_avg + psi (w - w_avg)`` on the generator given (the EMA copy at sampling, which
        carries its own copy of ``w_avg``)."""
        return generator(z, y, psi=psi)

    # -- the noise inputs at sampling (gantk sample / interpolate --noise-mode, gantk.sampling)
    noise_modes = NOISE_MODES
    #: what pictures are drawn with unless asked otherwise: StyleGAN2-ADA's gen_images.py default
    #: (its training loop draws its snapshot grids the same way); metrics draw random noise
    sample_noise_mode = "const"

    @contextlib.contextmanager
    def noise_mode(self, generator: nn.Module, mode: str) -> Iterator[None]:
        """``generator`` (G or its EMA copy) draws its noise inputs as ``mode`` in eval mode."""
        if mode not in NOISE_MODES:
            raise ValueError(f"unknown noise mode {mode!r}; use one of {NOISE_MODES}")
        was = generator.noise_mode
        generator.noise_mode = mode
        try:
            yield
        finally:
            generator.noise_mode = was

    def to_w(self, generator: nn.Module, z: Tensor, y: Tensor | None = None, *,
             psi: float | None = None) -> Tensor:
        return generator.mapping_ws(z, y, psi=psi)[:, 0]

    def from_w(self, generator: nn.Module, w: Tensor) -> Tensor:
        return generator.render(w.unsqueeze(1).repeat(1, generator.num_ws, 1))

    def make_encoder(self, out_dim: int, **kwargs: Any) -> nn.Module:
        """D's architecture with an ``out_dim``-wide output and no minibatch-stddev layer (an
        encoder's output for one image must not depend on the rest of the batch)."""

        net = StyleGAN2Discriminator(params=self.params, resolution=self.resolution,
                                     img_channels=self.image_shape[0], num_classes=None,
                                     out_dim=out_dim, mbstd_group=0)
        return _Encoder(net)

    def g_param_groups(self, lr: float) -> list[dict[str, Any]]:
        """The mapping layers at lr * lr_mlp, everything else at lr. Under Adam this equals the
        official run-time multiplier (Adam's step does not depend on the gradient's scale)."""

        slow = list(self.generator.mapping.layers.parameters())
        ids = {id(p) for p in slow}
        rest = [p for p in self.generator.parameters() if id(p) not in ids]
        return [{"params": rest, "lr": lr}, {"params": slow, "lr": lr * self.params.lr_mlp}]

    def optimizer_overrides(self) -> dict[str, dict[str, Any]]:
        """The paper's Adam betas; with ``lazy_rescale`` also the originals' rescaling for a
        separate regularisation step every N steps: c = N / (N + 1), lr * c (``lr_scale``, applied
        to train.lr_g / lr_d) and betas ** c (Karras et al. 2020, App. B; rosinality's train.py).
        gantk adds the lazy terms to the ordinary step, so there is no extra step to compensate
        for and the default leaves lr and betas as set."""

        out = {}
        b1, b2 = self.params.betas
        for net, every in (("g", self.params.g_reg_every), ("d", self.params.d_reg_every)):
            c = every / (every + 1) if every and self.params.lazy_rescale else 1.0
            out[net] = {"lr_scale": c, "betas": (b1**c, b2**c)}
        return out


class _Encoder(nn.Module):
    def __init__(self, net: StyleGAN2Discriminator) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: Tensor) -> Tensor:
        return self.net.out(self.net.features(x))


def build(params: StyleGAN2Params, data: DataInfo) -> StyleGAN2Backbone:
    return StyleGAN2Backbone(params=params, data=data)
