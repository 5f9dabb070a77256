"""ACL's two components: the code generator G_z (a LatentTransform) and the code learning terms
(a Regularizer owning the code discriminator D_c and, for ACL-GAN/ACL-SGAN, the encoder E).

How Algorithm 1 maps onto the trainer's fixed step (docs/methods/acl.md has the full account):

* D phase: z -> G_z(z) = c_f (no grad) -> D sees x_r against G(c_f) (L_D, the stack's loss);
  D_c's half of L_Z (``code_d``) on c = E(x_r) against c_f. D and D_c step (line 12's D, line
  13's D_c).
* G phase: a fresh z -> c_f = G_z(z); G receives ``c_f.detach()``, so the stack's adversarial
  loss trains G only (Eq. 5) while G_z learns from its half of L_Z only (``code_g``, line 13);
  the reconstruction L_R = ||Phi(x_r) - Phi(G(E(x_r)))||^2 (``reconstruction``, line 11 / Eq. 4)
  trains E (and G, per Eq. 4) with D frozen. G, G_z and E step.
* ACL-AE (backbone without D): the G phase has no adversarial term; the backbone's pixel
  reconstruction L_E (Eq. 2) trains Enc_x and Dec_x, and ``code_g`` trains G_z (Eq. 3).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field
from torch import Tensor, nn
from torch.func import functional_call

from gantk import Backbone, BuildContext, LatentTransform, Regularizer, StepContext, frozen

from .equations import (code_discriminator_loss, code_generator_loss, feature_matching_loss,
                        interpolate_codes, mixture_centres, mixture_sample)

CODE_KEY = "acl/code"  # ctx.cache key of c_f = G_z(z) (with its graph in the G phase)


class ACLParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    inference: Literal["encoder", "classifier"] = Field(
        "encoder", description="what produces the real codes c = E(x): 'encoder' (ACL-GAN, ACL-AE) "
        "or 'classifier' (ACL-SGAN, Sec. 4.3: E is a classifier trained on labels, the code is its "
        "last fully connected layer; needs labelled data)")
    code_hidden: int = Field(256, ge=1, le=16_384, description="hidden width of the two-layer MLPs G_z and "
                             "D_c (Sec. 5: 'simple 2-layer MLPs in the ACL module')")
    code_adversarial_weight: float = Field(1.0, ge=0, description="weight of the code adversarial "
                                           "loss L_Z (lambda_4 in Eq. 6, lambda_1 in Eq. 3)")
    reconstruction_weight: float = Field(1.0, ge=0, description="weight of the reconstruction "
                                         "(lambda_2 of L_rec in Eq. 6; with backbone=autoencoder "
                                         "the weight of L_E in Eq. 3, 1 in the paper)")
    code_loss: Literal["ns", "minimax"] = Field(
        "ns", description="G_z's side of Eq. 1: 'minimax' = log(1 - D_c(G_z(z))) as written, "
        "'ns' = the non-saturating -log D_c(G_z(z))")
    reconstruction_trains: Literal["encoder_and_generator", "encoder"] = Field(
        "encoder_and_generator", description="networks the feature-matching reconstruction L_R "
        "trains: E and G (Eq. 4, min over theta_E, theta_G) or E only (Algorithm 1, line 11)")
    feature_reduction: Literal["mean", "sum"] = Field(
        "mean", description="||Phi(x) - Phi(G(E(x)))||^2 over D's features: 'sum' (the squared "
        "norm) or 'mean' (divided by D's feature width)")
    classification_weight: float = Field(1.0, ge=0, description="weight of the classifier's "
                                         "cross-entropy (inference = 'classifier' only)")
    prior_modes: int = Field(1, ge=1, le=10_000, description="modes k of the Gaussian prior p_z (Sec. 5.6): "
                             "1 = a single standard Gaussian, k > 1 = a k-mode mixture")
    prior_mode_radius: float = Field(2.0, gt=0, description="k > 1: the modes sit on a circle of "
                                     "this radius in the first two prior coordinates")
    prior_mode_std: float = Field(0.25, gt=0, description="k > 1: standard deviation of each mode")
    sample_codes: Literal["generator", "prior"] = Field(
        "generator", description="what G decodes at sampling: 'generator' = G_z(z), ACL's samples; "
        "'prior' = the draw from p_z itself, bypassing G_z (training is unchanged, so a run with "
        "'prior' samples the plain autoencoder / GAN that ACL-AE / ACL-GAN trained: the baseline "
        "of Sec. 5.2)")



def two_layer_mlp(d_in: int, hidden: int, d_out: int) -> nn.Sequential:
    """The 'simple 2-layer MLP' of Sec. 5 (one hidden layer, LeakyReLU 0.2)."""
    return nn.Sequential(nn.Linear(d_in, hidden), nn.LeakyReLU(0.2), nn.Linear(hidden, d_out))


def is_autoencoder(backbone: Backbone) -> bool:
    return "autoencoder" in backbone.provides and backbone.discriminator is None


class CodeGenerator(LatentTransform):
    """G_z: z ~ p_z -> c_f (Sec. 3.2). Trained by G's optimiser, by L_Z only: G receives the code
    detached, so the image adversarial loss never reaches G_z (Algorithm 1, lines 12-13)."""

    phases = frozenset({"d", "g", "sample"})

    def __init__(self, *, params: ACLParams, dim: int) -> None:
        super().__init__()
        self.params = params
        self.net = two_layer_mlp(dim, params.code_hidden, dim)
        self.register_buffer("centres", mixture_centres(params.prior_modes, dim,
                                                        radius=params.prior_mode_radius))

    def prior(self, z: Tensor) -> Tensor:
        """Map the backbone's standard draw to p_z (identity for one mode)."""
        if self.params.prior_modes == 1:
            return z
        k = torch.randint(self.params.prior_modes, (z.shape[0],), device=z.device)
        return mixture_sample(z, self.centres, self.params.prior_mode_std, k)

    def forward(self, z: Tensor, ctx: StepContext) -> Tensor:
        if ctx.phase == "sample" and self.params.sample_codes == "prior":
            return self.prior(z)
        code = self.net(self.prior(z))
        ctx.cache[CODE_KEY] = code
        return code.detach() if ctx.phase == "g" else code

    def g_parameters(self):
        return list(self.net.parameters())


class CodeLearning(Regularizer):
    """D_c and E with their terms: ``code_d`` (D phase), ``code_g`` and ``reconstruction``
    (+ ``classification`` for ACL-SGAN) in the G phase."""

    def __init__(self, *, params: ACLParams, backbone: Backbone, num_classes: int | None) -> None:
        super().__init__()
        self.params = params
        dim = backbone.latent_dim
        self.autoencoder = is_autoencoder(backbone)
        self.code_discriminator = two_layer_mlp(dim, params.code_hidden, 1)
        # ACL-AE uses the backbone's own Enc_x (reached through ctx.backbone, never stored here)
        self.encoder = None if self.autoencoder else backbone.make_encoder(dim)
        self.classifier_head = (nn.Linear(dim, num_classes)
                                if params.inference == "classifier" else None)

    # ------------------------------------------------------------------ parameters
    def d_parameters(self):
        return list(self.code_discriminator.parameters())

    def g_parameters(self):
        params: list[nn.Parameter] = []
        for net in (self.encoder, self.classifier_head):
            if net is not None:
                params += list(net.parameters())
        return params

    # ------------------------------------------------------------------ pieces
    def encode(self, x: Tensor, backbone: Backbone) -> Tensor:
        """c = E(x): the backbone's Enc_x for ACL-AE, the component's E otherwise."""
        return backbone.encode(x) if self.autoencoder else self.encoder(x)

    def code_logits(self, c: Tensor) -> Tensor:
        return self.code_discriminator(c).squeeze(1)

    # ------------------------------------------------------------------ terms
    def d_terms(self, ctx: StepContext) -> dict[str, Tensor]:
        with torch.no_grad():  # p_c is fixed for the code game (Sec. 3.2): E is not trained by L_Z
            real_codes = self.encode(ctx.real, ctx.backbone)
        fake_codes = ctx.cache[CODE_KEY].detach()
        loss = code_discriminator_loss(self.code_logits(real_codes), self.code_logits(fake_codes))
        return {"code_d": self.params.code_adversarial_weight * loss}

    def g_terms(self, ctx: StepContext) -> dict[str, Tensor]:
        p = self.params
        with frozen(self.code_discriminator):
            fake_logits = self.code_logits(ctx.cache[CODE_KEY])
        terms = {"code_g": p.code_adversarial_weight
                 * code_generator_loss(fake_logits, form=p.code_loss)}
        if self.autoencoder:  # Eq. 2-3: the backbone's pixel reconstruction trains Enc_x, Dec_x
            terms["reconstruction"] = p.reconstruction_weight * ctx.backbone.reconstruction_loss(ctx.real)
            return terms
        codes = self.encoder(ctx.real)
        if self.classifier_head is not None:  # ACL-SGAN: E learns from labels only
            terms["classification"] = p.classification_weight * F.cross_entropy(
                self.classifier_head(codes), ctx.real_y)
            codes = codes.detach()
        y = ctx.real_y if ctx.backbone.num_classes else None
        if p.reconstruction_trains == "encoder":  # Algorithm 1 line 11: G's weights held fixed
            weights = {n: w.detach() for n, w in ctx.G.named_parameters()}
            rec = functional_call(ctx.G, weights, (codes, y))
        else:
            rec = ctx.G(codes, y)
        target = ctx.real_features.detach()  # Phi(x_r): D's last feature layer; D is frozen here
        terms["reconstruction"] = p.reconstruction_weight * feature_matching_loss(
            target, ctx.D.features(rec, y), reduction=p.feature_reduction)
        return terms

    # ------------------------------------------------------------------ interpolation
    @torch.no_grad()
    def interpolate(self, pipeline, x_a: Tensor, x_b: Tensor, steps: int = 8,
                    y: Tensor | None = None) -> Tensor:
        """G(c_t) for c_t = (1 - t) E(x_a) + t E(x_b), t = 0 .. 1: (B, steps, *image_shape)."""
        backbone = pipeline.backbone
        if backbone.num_classes and y is None:
            raise ValueError("a class-conditional backbone needs labels y for the interpolation")
        G = pipeline.sampling_generator
        nets = [backbone, self]
        modes = [n.training for n in nets]
        for n in nets:
            n.eval()
        try:
            dev = pipeline.device
            c_a = self.encode(x_a.to(dev), backbone)
            c_b = self.encode(x_b.to(dev), backbone)
            codes = interpolate_codes(c_a, c_b, steps)
            flat = codes.reshape(-1, codes.shape[-1])
            yy = None if y is None else y.to(dev).repeat_interleave(steps)
            out = G(flat, yy)
        finally:
            for n, m in zip(nets, modes):
                n.train(m)
        return out.reshape(x_a.shape[0], steps, *out.shape[1:]).cpu()


# ---------------------------------------------------------------------------------- build


def check(params: ACLParams, ctx: BuildContext) -> None:
    bb, name = ctx.backbone, ctx.spec.backbone.name
    ae = is_autoencoder(bb)
    if not ae and not {"discriminator", "d_features"} <= bb.provides:
        raise ValueError(f"acl needs either an image discriminator with features (ACL-GAN matches "
                         f"reconstructions in D's last feature layer) or an autoencoder backbone "
                         f"(ACL-AE), and backbone {name!r} has neither")
    if params.inference == "classifier":
        if not ctx.data.labelled:
            raise ValueError(f"inference = 'classifier' (ACL-SGAN) trains E as a classifier on "
                             f"class labels, and data set {ctx.spec.data.name!r} is unlabelled; "
                             "set inference = 'encoder' or use labelled data")
        if ae:
            raise ValueError("inference = 'classifier' (ACL-SGAN) replaces ACL-GAN's encoder and "
                             "needs an image discriminator; backbone 'autoencoder' has none (its "
                             "codes come from Enc_x: use inference = 'encoder' for ACL-AE)")


def build(params: ACLParams, ctx: BuildContext) -> list:
    check(params, ctx)
    dim = ctx.backbone.latent_dim
    return [CodeGenerator(params=params, dim=dim),
            CodeLearning(params=params, backbone=ctx.backbone, num_classes=ctx.data.num_classes)]


def find_code_learning(pipeline) -> CodeLearning:
    for comp in pipeline.components:
        if isinstance(comp, CodeLearning):
            return comp
    raise ValueError(f"the stack {pipeline.spec.shorthand!r} has no acl component to encode "
                     "real images; train a stack with acl")


def interpolate(pipeline, x_a: Tensor, x_b: Tensor, steps: int = 8,
                y: Tensor | None = None) -> Tensor:
    """Sec. 5.5, Fig. 10: images decoded from codes interpolated between E(x_a) and E(x_b),
    shape (B, steps, *image_shape); t runs from 0 (x_a's code) to 1 (x_b's code)."""
    return find_code_learning(pipeline).interpolate(pipeline, x_a, x_b, steps, y=y)


def interpolation_rows(pipeline, x_a: Tensor, x_b: Tensor, steps: int = 8,
                       y: Tensor | None = None) -> Tensor:
    """Fig. 10's layout: each row is x_a, the ``steps`` decoded interpolants, x_b (real images at
    both ends); returns (B * (steps + 2), *image_shape) for a grid with ``steps + 2`` columns."""
    mid = interpolate(pipeline, x_a, x_b, steps, y=y)
    rows = torch.cat([x_a.cpu().unsqueeze(1), mid, x_b.cpu().unsqueeze(1)], dim=1)
    return rows.reshape(-1, *rows.shape[2:])
