"""Unit tests of the first-party backbones: shapes, the D feature split, encoders, conditioning,
and StyleGAN2's parts (equalised lr, demodulation, minibatch std, truncation, style mixing,
path length, optimiser rescaling)."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from pydantic import ValidationError

from gantk import IncompatibleStackError, Pipeline, get_registry
from gantk.base.interfaces import DataInfo, StepContext
from gantk_plugins.backbones import autoencoder, dcgan, mlp, resnet, stylegan2, stylegan2_reg
from gantk_plugins.backbones.layers import TPReLU
from gantk_plugins.backbones.stylegan2_layers import (EqualConv2d, EqualLinear, ModulatedConv2d,
                                                      minibatch_stddev)

DIGITS16 = DataInfo(shape=(1, 16, 16), num_classes=10)
UNLABELLED16 = DataInfo(shape=(3, 16, 16))
POINTS = DataInfo(shape=(2,), kind="points")
TINY_SG2 = dict(latent_dim=16, style_dim=16, n_mlp=2, channel_base=128, channel_max=16)

#: name -> (module, params class, tiny options); every image backbone, built at 16 px
IMAGE_BACKBONES = {
    "dcgan": (dcgan, dcgan.DCGANParams, dict(width=4, latent_dim=8)),
    "dcgan_wn": (dcgan, dcgan.DCGANParams, dict(width=4, latent_dim=8, weight_norm=True, batch_norm=False)),
    "resnet": (resnet, resnet.ResNetParams, dict(g_channels=16, d_channels=16, latent_dim=8)),
    "resnet_stl": (resnet, resnet.ResNetParams, dict(g_channels=16, d_channels=4, latent_dim=8, layout="stl")),
    "stylegan2": (stylegan2, stylegan2.StyleGAN2Params, TINY_SG2),
}


def make(key: str, data: DataInfo = DIGITS16, **extra):
    module, params, options = IMAGE_BACKBONES[key]
    return module.build(params(**{**options, **extra}), data)


def test_all_backbones_registered():
    names = set(get_registry().names("backbone"))
    assert {"mlp", "dcgan", "resnet", "stylegan2", "autoencoder"} <= names
    assert "path_length" in get_registry().names("regularizer")


@pytest.mark.parametrize("key", IMAGE_BACKBONES)
@pytest.mark.parametrize("conditional", [False, True])
def test_shapes_feature_split_and_encoder(key, conditional):
    torch.manual_seed(0)
    bb = make(key, conditional=conditional)
    assert bb.num_classes == (10 if conditional else None)
    assert ("labels" in bb.provides) == conditional
    z = bb.sample_latent(6)
    assert z.shape == (6, bb.latent_dim)
    y = torch.randint(10, (6,)) if conditional else None
    x = bb.generator(z, y)
    assert x.shape == (6, 1, 16, 16)
    h = bb.discriminator.features(x, y)
    assert h.shape == (6, bb.feature_dim)
    logits = bb.discriminator.head(h, y)
    assert logits.shape == (6,)
    bb.eval()  # no power iteration of spectral norm between the two evaluations
    h = bb.discriminator.features(x, y)
    torch.testing.assert_close(bb.discriminator(x, y), bb.discriminator.head(h, y))
    assert bb.make_encoder(7)(x).shape == (6, 7)


@pytest.mark.parametrize("key", IMAGE_BACKBONES)
def test_conditional_nets_need_labels_and_use_them(key):
    torch.manual_seed(0)
    bb = make(key, conditional=True)
    z = bb.sample_latent(4)
    with pytest.raises(ValueError, match="labels"):
        bb.generator(z)
    # conditional BN starts as the identity affine map; give the classes distinct gains
    for module in bb.generator.modules():
        if type(module).__name__ == "ConditionalBatchNorm2d":
            torch.nn.init.normal_(module.gain.weight, 1.0, 0.5)
    bb.eval()
    y0, y1 = torch.zeros(4, dtype=torch.long), torch.ones(4, dtype=torch.long)
    assert not torch.allclose(bb.generator(z, y0), bb.generator(z, y1))
    x = bb.generator(z, y0)
    h = bb.discriminator.features(x, y0)
    assert not torch.allclose(bb.discriminator.head(h, y0), bb.discriminator.head(h, y1))
    with pytest.raises(ValueError, match="labels"):
        bb.discriminator.head(h)


@pytest.mark.parametrize("key", [*IMAGE_BACKBONES, "mlp"])
def test_conditional_on_unlabelled_data_is_refused(key):
    if key == "mlp":
        with pytest.raises(ValueError, match="labelled"):
            mlp.build(mlp.MLPParams(conditional=True), POINTS)
    else:
        with pytest.raises(ValueError, match="labelled"):
            make(key, UNLABELLED16, conditional=True)


def test_dcgan_tables_15_16_19_20():
    """32 px: 2x2x1024 after the first G layer, 2048-d D features; 48 px: 3x3x1024 and 4608."""
    for res, start, feat in ((32, 2, 2048), (48, 3, 4608)):
        bb = dcgan.build(dcgan.DCGANParams(layout="tables"), DataInfo(shape=(3, res, res)))
        assert bb.feature_dim == feat
        z = bb.sample_latent(2)
        assert bb.generator.input(z.view(2, -1, 1, 1)).shape == (2, 1024, start, start)
        assert bb.generator(z).shape == (2, 3, res, res)
        assert bb.discriminator.features(bb.generator(z)).shape == (2, feat)


@pytest.mark.parametrize("res, maps", [
    (16, [(256, 4), (128, 8), (1, 16)]),
    (32, [(512, 4), (256, 8), (128, 16), (1, 32)]),
    (48, [(1024, 3), (512, 6), (256, 12), (128, 24), (1, 48)]),
    (64, [(1024, 4), (512, 8), (256, 16), (128, 32), (1, 64)]),
])
def test_dcgan_standard_generator_starts_at_4x4_and_doubles(res, maps):
    """The standard G (the default): a 4x4 start (3x3 at 48 px) and one stride-2 layer per
    doubling; channels halve down to 2w (w = 64 here); the tables' layout has four at every size."""
    bb = dcgan.build(dcgan.DCGANParams(), DataInfo(shape=(1, res, res)))
    g = bb.generator
    x = g.input(bb.sample_latent(2).view(2, -1, 1, 1))
    shapes = [(x.shape[1], x.shape[2])]
    for norm, act, conv in zip(g.norms, g.acts, g.convs):
        x = conv(act(norm(x)))
        shapes.append((x.shape[1], x.shape[2]))
    assert shapes == maps
    assert len(dcgan.build(dcgan.DCGANParams(layout="tables"), DataInfo(shape=(1, res, res)))
               .generator.convs) == 4


def test_dcgan_init_is_radfords():
    bb = dcgan.build(dcgan.DCGANParams(), DIGITS16)
    convs = [m for m in bb.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))]
    weights = torch.cat([m.weight.detach().flatten() for m in convs])
    assert abs(float(weights.std()) - 0.02) < 0.002 and abs(float(weights.mean())) < 0.002
    bns = [m for m in bb.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert all(abs(float(m.weight.detach().mean()) - 1) < 0.02 and float(m.weight.detach().std()) > 0
               for m in bns)
    default = dcgan.build(dcgan.DCGANParams(init="pytorch"), DIGITS16)
    first = next(m for m in default.discriminator.modules() if isinstance(m, torch.nn.Conv2d))
    assert float(first.weight.detach().std()) > 0.1  # PyTorch's U(+-1/sqrt(fan_in)) with fan_in = 16


def test_dcgan_d_width_narrows_only_the_discriminator():
    """backbone.d_width: D's channels are d_width..8 d_width, G and the encoders keep width."""
    wide = dcgan.build(dcgan.DCGANParams(width=16), DIGITS16)
    weak = dcgan.build(dcgan.DCGANParams(width=16, d_width=4), DIGITS16)
    d_chans = [m.out_channels for m in weak.discriminator.modules() if isinstance(m, torch.nn.Conv2d)]
    assert d_chans[:4] == [4, 8, 16, 32]
    assert weak.feature_dim == 8 * 4 * 1 and wide.feature_dim == 8 * 16 * 1
    n_params = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert n_params(weak.generator) == n_params(wide.generator)
    assert n_params(weak.discriminator) < n_params(wide.discriminator) / 10
    assert n_params(weak.make_encoder(8)) == n_params(wide.make_encoder(8))
    x = weak.generator(weak.sample_latent(3))
    assert x.shape == (3, 1, 16, 16) and weak.discriminator(x).shape[0] == 3


def test_dcgan_options_are_validated():
    with pytest.raises(ValidationError, match="batch_norm = false"):
        dcgan.DCGANParams(weight_norm=True)
    with pytest.raises(ValidationError, match="extra"):
        dcgan.DCGANParams(widht=4)
    with pytest.raises(ValueError, match="multiple of 16"):
        dcgan.build(dcgan.DCGANParams(), DataInfo(shape=(1, 8, 8)))
    with pytest.raises(ValueError, match="set data.resolution = 32"):
        dcgan.build(dcgan.DCGANParams(resolution=32), DIGITS16)


def test_weight_norm_nets_use_tprelu_and_weight_norm():
    bb = make("dcgan_wn")
    names = [n for n, _ in bb.named_parameters()]
    assert any("parametrizations.weight.original0" in n for n in names)  # g of w = g v / ||v||
    assert any(isinstance(m, TPReLU) for m in bb.modules())
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in bb.modules())


def test_tprelu_is_a_prelu_translated_to_its_threshold():
    act = TPReLU(num_channels=1)
    with torch.no_grad():
        act.threshold.fill_(0.5)
        act.prelu.weight.fill_(0.1)
    x = torch.tensor([[2.0], [0.5], [-1.5]])
    torch.testing.assert_close(act(x), torch.tensor([[2.0], [0.5], [0.5 + 0.1 * -2.0]]))


def test_resnet_layouts_match_the_sngan_tables():
    cifar = resnet.build(resnet.ResNetParams(), DataInfo(shape=(3, 32, 32)))
    stl = resnet.build(resnet.ResNetParams(), DataInfo(shape=(3, 48, 48)))
    assert (cifar.layout, cifar.feature_dim, stl.layout, stl.feature_dim) == ("cifar", 128, "stl", 1024)
    # the published parameter counts of SNGAN's CIFAR nets: G 4.3M, D 1.0M
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert 4.2e6 < count(cifar.generator) < 4.4e6 and 0.95e6 < count(cifar.discriminator) < 1.1e6
    with pytest.raises(ValueError, match="layout"):
        resnet.build(resnet.ResNetParams(layout="stl"), DataInfo(shape=(1, 8, 8)))


def test_resnet_spectral_norm_bounds_each_layer():
    torch.manual_seed(0)
    bb = make("resnet")
    x = torch.randn(4, 1, 16, 16)
    for _ in range(30):  # power iterations run in training-mode forwards
        bb.discriminator(x)
    conv = bb.discriminator.blocks[1].conv1
    sigma = torch.linalg.matrix_norm(conv.weight.detach().flatten(1), ord=2)
    assert abs(float(sigma) - 1) < 0.05
    assert not any(hasattr(m, "parametrizations") for m in bb.make_encoder(3).modules())


def test_nets_survive_deepcopy_after_a_forward():
    """EMA copies and checkpoints deep-copy nets after training; spectral/weight norm must allow it."""
    for key in ("resnet", "dcgan_wn"):
        bb = make(key)
        bb.discriminator(bb.generator(bb.sample_latent(2)))
        clone = copy.deepcopy(bb)
        clone.eval(), bb.eval()
        z = bb.sample_latent(2)
        torch.testing.assert_close(clone.generator(z), bb.generator(z))


def test_autoencoder_has_no_discriminator_and_learns_to_reconstruct():
    torch.manual_seed(0)
    ae = autoencoder.build(autoencoder.AutoencoderParams(width=8, latent_dim=8), DIGITS16)
    assert ae.discriminator is None and "discriminator" not in ae.provides
    assert {"encoder", "autoencoder"} <= ae.provides
    assert ae.generator(ae.sample_latent(3)).shape == (3, 1, 16, 16)
    assert ae.encode(torch.randn(3, 1, 16, 16)).shape == (3, 8)
    enc_params = {id(p) for p in ae.encoder.parameters()}
    assert enc_params <= {id(p) for p in ae.g_parameters()}
    x = torch.rand(16, 1, 16, 16) * 2 - 1
    opt = torch.optim.Adam(ae.g_parameters(), lr=3e-3)
    first = ae.reconstruction_loss(x).item()
    for _ in range(40):
        opt.zero_grad()
        ae.reconstruction_loss(x).backward()
        opt.step()
    assert ae.reconstruction_loss(x).item() < 0.5 * first
    pts = autoencoder.build(autoencoder.AutoencoderParams(), POINTS)
    assert pts.generator(pts.sample_latent(5)).shape == (5, 2)


class _Fixed(torch.nn.Module):
    """An encoder that outputs one fixed row (mean, log-variance) for every image."""

    def __init__(self, row):
        super().__init__()
        self.row = torch.tensor(row)

    def forward(self, x):
        return self.row.expand(x.shape[0], -1)


def test_vae_objective_is_reconstruction_plus_beta_kl_per_image_element():
    torch.manual_seed(0)
    vae = autoencoder.build(autoencoder.AutoencoderParams(width=4, latent_dim=2, kl_weight=0.5),
                            DIGITS16)
    assert vae.encoder(torch.zeros(3, 1, 16, 16)).shape == (3, 4)  # mean and log-variance
    vae.encoder = _Fixed([1.0, -2.0, math.log(4.0), 0.0])  # mean (1, -2), variances (4, 1)
    vae.eval()  # eval mode decodes the posterior mean: the value is deterministic
    x = torch.rand(5, 1, 16, 16) * 2 - 1
    mean = torch.tensor([[1.0, -2.0]]).expand(5, -1)
    torch.testing.assert_close(vae.encode(x), mean)
    # KL(N(mu, s^2) || N(0, 1)) = (mu^2 + s^2 - 1 - ln s^2) / 2 per dimension
    kl = 0.5 * (1 + 4 - 1 - math.log(4.0)) + 0.5 * (4 + 1 - 1 - 0)
    expected = torch.nn.functional.mse_loss(vae.generator(mean), x) + 0.5 * kl / 256
    torch.testing.assert_close(vae.reconstruction_loss(x), expected)
    vae.train()  # training mode decodes a sample: same KL, a different reconstruction
    assert not torch.allclose(vae.reconstruction_loss(x), expected)


def test_vae_kl_pulls_the_codes_to_the_prior_and_a_uniform_prior_is_refused():
    x = torch.rand(32, 1, 16, 16) * 2 - 1
    spread = {}
    for beta in (0.0, 50.0):
        torch.manual_seed(0)
        ae = autoencoder.build(autoencoder.AutoencoderParams(width=4, latent_dim=4, kl_weight=beta),
                               DIGITS16)
        opt = torch.optim.Adam(ae.g_parameters(), lr=3e-3)
        for _ in range(60):
            opt.zero_grad()
            ae.reconstruction_loss(x).backward()
            opt.step()
        ae.eval()
        spread[beta] = ae.encode(x).pow(2).mean().item()
    assert spread[50.0] < 0.1 < spread[0.0]  # the VAE's posterior means sit near the prior's 0
    with pytest.raises(ValidationError, match="prior"):
        autoencoder.AutoencoderParams(kl_weight=1.0, prior="uniform")


# ----------------------------------------------------------------------------------- StyleGAN2


def test_equalised_lr_scales_by_inverse_sqrt_fan_in():
    torch.manual_seed(0)
    lin = EqualLinear(256, 64)
    assert abs(lin.weight.detach().std().item() - 1) < 0.05  # stored as N(0, 1)
    x = torch.randn(4096, 256)
    assert abs(lin(x).detach().std().item() - 1) < 0.05  # so outputs keep unit variance
    lin(x).sum().backward()
    # the gradient reaching the stored weight carries the run-time scale 1/sqrt(fan_in)
    torch.testing.assert_close(lin.weight.grad, x.sum(0).expand(64, -1) / math.sqrt(256))
    conv = EqualConv2d(32, 8, 3)
    assert conv.scale == pytest.approx(1 / math.sqrt(32 * 9))
    act = EqualLinear(256, 64, activation=True)
    y = act(x).detach()  # fused leaky ReLU with gain sqrt(2): E[y^2] = 2 (1 + 0.2^2) / 2 = 1.04
    assert abs(y.pow(2).mean().item() - 1.04) < 0.1


def test_modulated_conv_demodulation_gives_unit_variance():
    torch.manual_seed(0)
    for demodulate, expect_unit in ((True, True), (False, False)):
        conv = ModulatedConv2d(64, 32, 3, style_dim=16, demodulate=demodulate)
        with torch.no_grad():
            conv.modulation.bias.fill_(3.0)  # styles far from 1: only demodulation undoes them
        x = torch.randn(8, 64, 24, 24)
        with torch.no_grad():
            out = conv(x, torch.randn(8, 16))[:, :, 1:-1, 1:-1]  # interior: no zero padding
        std = out.std(dim=(0, 2, 3))  # per output channel
        if expect_unit:
            assert torch.allclose(std, torch.ones_like(std), atol=0.1)
        else:
            assert float(std.mean()) > 2


def test_minibatch_stddev_matches_a_direct_computation():
    torch.manual_seed(0)
    x = torch.randn(8, 4, 3, 3)
    out = minibatch_stddev(x, group_size=4)
    assert out.shape == (8, 5, 3, 3)
    torch.testing.assert_close(out[:, :4], x)
    # group size 4 on 8 samples: sample i shares its group with i + 2, i + 4, i + 6
    for i in range(8):
        members = x[[i % 2, i % 2 + 2, i % 2 + 4, i % 2 + 6]]
        expected = (members.var(0, unbiased=False) + 1e-8).sqrt().mean()
        torch.testing.assert_close(out[i, 4], expected.expand(3, 3))
    assert minibatch_stddev(torch.randn(6, 4, 2, 2), group_size=4).shape == (6, 5, 2, 2)


def test_truncation_at_psi_zero_gives_the_mean_w():
    torch.manual_seed(0)
    bb = make("stylegan2", truncation_psi=0.0)
    G = bb.generator
    G.train()
    for _ in range(5):  # training-mode forwards track the running mean of w
        G.mapping_ws(torch.randn(16, 16))
    assert float(G.w_avg.abs().sum()) > 0
    G.eval()
    ws = G.mapping_ws(torch.randn(4, 16))
    torch.testing.assert_close(ws, G.w_avg.expand(4, G.num_ws, -1))
    half = G.mapping_ws(z := torch.randn(4, 16), psi=0.5)
    torch.testing.assert_close(half[:, 0], G.w_avg + 0.5 * (G.mapping(z) - G.w_avg))


def test_style_mixing_only_in_training_mode():
    torch.manual_seed(0)
    G = make("stylegan2", mixing_prob=1.0).generator
    z = torch.randn(3, 16)
    G.train()
    _, ws = G(z, return_ws=True)
    changes = (ws[:, 1:] - ws[:, :-1]).abs().sum((0, 2)) > 0
    assert int(changes.sum()) == 1  # exactly one crossover point between two w's
    G.eval()
    _, ws = G(z, return_ws=True)
    assert torch.equal(ws, ws[:, :1].expand_as(ws))


def test_stylegan2_noise_inputs_and_output_range():
    torch.manual_seed(0)
    bb = make("stylegan2")
    G = bb.generator.eval()
    z = torch.randn(2, 16)
    for m in G.modules():
        if type(m).__name__ == "NoiseInjection":
            assert m.strength.shape == ()  # one strength per layer, as the references
            torch.nn.init.constant_(m.strength, 0.5)
    assert not torch.allclose(G(z), G(z))  # eval default: random noise
    with bb.noise_mode(G, "const"):
        torch.testing.assert_close(G(z), G(z))
    torch.testing.assert_close(G(z, noise_mode="none"), G(z, noise_mode="none"))
    with torch.no_grad():
        assert G(z * 10).abs().max().item() <= 1


def test_stylegan2_optimiser_settings():
    # default: the lazy terms ride in the ordinary step, so lr and betas stay as the paper sets them
    over = make("stylegan2").optimizer_overrides()
    assert over["g"] == {"lr_scale": 1.0, "betas": (0.0, 0.99)} and over["d"] == over["g"]
    bb = make("stylegan2", lazy_rescale=True, d_reg_every=16)  # the originals' separate-step rescaling
    over = bb.optimizer_overrides()
    assert over["g"]["lr_scale"] == pytest.approx(4 / 5)
    assert over["d"]["lr_scale"] == pytest.approx(16 / 17)
    assert over["g"]["betas"] == pytest.approx((0.0, 0.99 ** (4 / 5)))
    groups = bb.g_param_groups(0.002)
    mapping = {id(p) for p in bb.generator.mapping.layers.parameters()}
    assert {id(p) for p in groups[1]["params"]} == mapping and groups[1]["lr"] == pytest.approx(2e-5)
    every = [id(p) for g in groups for p in g["params"]]
    assert sorted(every) == sorted(id(p) for p in bb.generator.parameters())


def test_path_length_penalty_is_lazy_and_tracks_its_mean():
    torch.manual_seed(0)
    bb = make("stylegan2")
    reg = stylegan2_reg.PathLength(params=stylegan2_reg.PathLengthParams(every=2))
    ctx = lambda step: StepContext(phase="g", backbone=bb, loss=None, step=step,  # noqa: E731
                                   z=bb.sample_latent(8))
    terms = reg.g_terms(ctx(1))
    assert set(terms) == {"path_length"} and terms["path_length"].requires_grad
    assert reg.mean_length.item() > 0
    assert reg.g_terms(ctx(2)) == {}
    terms["path_length"].backward()
    assert bb.generator.const.grad is not None


def test_path_length_is_refused_where_it_cannot_work():
    base = {"data": {"name": "digits", "resolution": 16}, "train": {"batch_size": 4},
            "methods": [{"name": "path_length", "every": 4}]}
    with pytest.raises(IncompatibleStackError, match="path_length"):
        Pipeline.from_spec({**base, "backbone": {"name": "dcgan", "width": 4}})
    with pytest.raises(IncompatibleStackError, match="g_reg_every"):
        Pipeline.from_spec({**base, "backbone": {"name": "stylegan2", **TINY_SG2, "g_reg_every": 8}})


def test_stylegan2_r1_with_another_interval_is_refused():
    base = {"data": {"name": "digits", "resolution": 16}, "train": {"batch_size": 4}}
    sg2 = {"name": "stylegan2", **TINY_SG2, "d_reg_every": 16}
    with pytest.raises(IncompatibleStackError, match="d_reg_every = 16") as info:
        Pipeline.from_spec({**base, "backbone": sg2, "methods": [{"name": "r1", "every": 4}]})
    assert "r1 every = 16" in info.value.paragraph()
    Pipeline.from_spec({**base, "backbone": sg2, "methods": [{"name": "r1", "every": 16}]})
    # other backbones declare no interval: any every is fine
    Pipeline.from_spec({**base, "backbone": {"name": "dcgan", "width": 4},
                        "methods": [{"name": "r1", "every": 4}]})


def test_fir_resampling_is_the_1331_filter():
    from gantk_plugins.backbones.stylegan2_layers import downsample2x, upsample2x

    x = torch.zeros(1, 1, 8, 8)
    x[0, 0, 3, 3] = 1.0
    # down: the impulse response is the normalised filter sampled at every second pixel
    down = downsample2x(x)
    assert down.shape == (1, 1, 4, 4)
    torch.testing.assert_close(down[0, 0, 1:3, 1:3], torch.tensor([[9.0, 3.0], [3.0, 1.0]]) / 64)
    assert down.sum() == pytest.approx(16 / 64)  # the taps that land on even pixels
    assert downsample2x(torch.ones(1, 2, 8, 8))[:, :, 1:-1, 1:-1].allclose(torch.ones(1, 2, 2, 2))
    # up: gain 4 keeps a constant; inside the border the polyphase taps (1/4, 3/4) equal bilinear
    up = upsample2x(torch.ones(1, 2, 4, 4))
    assert up.shape == (1, 2, 8, 8) and up[:, :, 1:-1, 1:-1].allclose(torch.ones(1, 2, 6, 6))
    r = torch.randn(1, 1, 6, 6)
    torch.testing.assert_close(upsample2x(r)[..., 1:-1, 1:-1], upsample2x(r, "bilinear")[..., 1:-1, 1:-1])
    # the two modes differ downwards (a 4-tap filter against a 2x2 box)
    assert not torch.allclose(downsample2x(r), downsample2x(r, "bilinear"))


@pytest.mark.parametrize("resample", ["blur", "bilinear"])
def test_stylegan2_resampling_modes_build_and_run(resample):
    bb = make("stylegan2", resample=resample)
    assert bb.generator.convs[0].conv.resample == resample
    img = bb.generator(bb.sample_latent(4))
    assert img.shape == (4, 1, 16, 16)
    assert bb.discriminator(img).shape == (4,)


# ----------------------------------------------------------------------------------- examples

EXAMPLES = ["stylegan2", "stylegan2_conditional", "resnet", "resnet_conditional", "dcgan48",
            "dcgan_conditional", "dcgan_weightnorm", "autoencoder"]


@pytest.mark.parametrize("name", EXAMPLES)
def test_example_stacks_train(name):
    """Each backbone's example stack validates and takes a training step (on a small batch)."""
    from pathlib import Path

    path = Path(__file__).parents[1] / "examples" / "stacks" / f"{name}.toml"
    pipe = Pipeline.from_spec(path, ["train.batch_size=8", "train.device=cpu"])
    logs = pipe.train(steps=1, progress=False)
    assert logs and all(math.isfinite(v) for v in logs.values()), logs
    assert pipe.sample(2).shape == (2, *pipe.data_info.shape)
