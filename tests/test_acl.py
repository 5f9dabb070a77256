"""ACL (adversarial code learning): equations on known tensors, which networks each loss trains,
the refusals, the modes (ACL-GAN, ACL-GAN-GP, ACL-SGAN, ACL-AE), the prior and interpolation."""

from __future__ import annotations

import math

import pytest
import torch

from gantk import IncompatibleStackError, Pipeline
from gantk.base.interfaces import LatentTransform
from gantk_plugins.acl import (CodeGenerator, CodeLearning, code_discriminator_loss,
                               code_generator_loss, feature_matching_loss, interpolate,
                               interpolate_codes, interpolation_rows, mixture_centres)

LOG2 = math.log(2.0)


def _spec(backbone="dcgan", methods=None, data=None, loss="ns", **backbone_opts):
    opts = {"dcgan": {"width": 4, "latent_dim": 8}, "autoencoder": {"width": 4, "latent_dim": 8},
            "mlp": {"hidden": [16, 16], "latent_dim": 2}}[backbone]
    return {"seed": 0, "backbone": {"name": backbone, **opts, **backbone_opts}, "loss": {"name": loss},
            "data": data or {"name": "digits", "resolution": 16},
            "methods": [{"name": "acl", "code_hidden": 16}] if methods is None else methods,
            "train": {"steps": 2, "batch_size": 8, "device": "cpu", "sample_every": 0,
                      "ckpt_every": 0, "log_every": 1}}


def _parts(pipe):
    gen = next(c for c in pipe.components if isinstance(c, CodeGenerator))
    learn = next(c for c in pipe.components if isinstance(c, CodeLearning))
    return gen, learn


def _has_grad(module) -> bool:
    return any(p.grad is not None and p.grad.abs().sum() > 0 for p in module.parameters())


def _zero(pipe):
    for m in pipe.modules().values():
        for p in m.parameters():
            p.grad = None


def _phase_ctx(pipe, phase):
    """A step context built exactly as the trainer builds it, transforms applied."""
    real, real_y = next(iter(pipe.stream))
    return pipe.step_context(phase, real=real, real_y=real_y, step=1)


def _which(pipe, term):
    """Backward one term alone; return the set of networks it reached."""
    gen, learn = _parts(pipe)
    nets = {"G": pipe.backbone.generator, "G_z": gen, "D_c": learn.code_discriminator}
    if pipe.backbone.discriminator is not None:
        nets["D"] = pipe.backbone.discriminator
    nets["E"] = learn.encoder if learn.encoder is not None else pipe.backbone.encoder
    if learn.classifier_head is not None:
        nets["head"] = learn.classifier_head
    _zero(pipe)
    term.backward()
    return {name for name, net in nets.items() if _has_grad(net)}


def _g_terms(pipe):
    """G-phase terms with D frozen, as in the trainer."""
    for p in pipe.backbone.d_parameters():
        p.requires_grad_(False)
    ctx = _phase_ctx(pipe, "g")
    terms = {k: v for k, v in _parts(pipe)[1].g_terms(ctx).items()}
    if pipe.backbone.discriminator is not None:
        terms["loss/g"] = pipe.loss.g_loss(ctx.fake_logits)
    pipe.last_ctx = ctx
    return terms


# ------------------------------------------------------------------------------ equations

def test_code_losses_on_known_logits():
    zeros = torch.zeros(5)
    assert code_discriminator_loss(zeros, zeros).item() == pytest.approx(2 * LOG2)
    assert code_generator_loss(zeros).item() == pytest.approx(LOG2)
    assert code_generator_loss(zeros, form="minimax").item() == pytest.approx(-LOG2)
    real, fake = torch.tensor([math.log(3.0)]), torch.tensor([-math.log(3.0)])  # D_c = 3/4, 1/4
    assert code_discriminator_loss(real, fake).item() == pytest.approx(-2 * math.log(0.75))
    assert code_generator_loss(fake).item() == pytest.approx(-math.log(0.25))
    assert code_generator_loss(fake, form="minimax").item() == pytest.approx(math.log(0.75))
    with pytest.raises(ValueError):
        code_generator_loss(fake, form="hinge")


def test_feature_matching_on_known_features():
    real = torch.tensor([[1.0, 2.0], [0.0, 0.0]])
    rec = torch.zeros(2, 2)
    assert feature_matching_loss(real, rec, reduction="sum").item() == pytest.approx(2.5)
    assert feature_matching_loss(real, rec, reduction="mean").item() == pytest.approx(1.25)
    assert feature_matching_loss(real, real).item() == 0.0


def test_mixture_centres_and_interpolated_codes():
    assert torch.equal(mixture_centres(1, 3, radius=2.0), torch.zeros(1, 3))
    c = mixture_centres(4, 3, radius=math.sqrt(2))
    corners = {(round(a), round(b), round(z)) for a, b, z in c.tolist()}
    assert corners == {(1, 1, 0), (-1, 1, 0), (-1, -1, 0), (1, -1, 0)}
    a, b = torch.zeros(2, 3), torch.ones(2, 3)
    codes = interpolate_codes(a, b, 5)
    assert codes.shape == (2, 5, 3)
    torch.testing.assert_close(codes[:, 0], a)
    torch.testing.assert_close(codes[:, -1], b)
    torch.testing.assert_close(codes[:, 2], torch.full((2, 3), 0.5))


def test_k_mode_prior_feeds_code_generator_mixture_draws():
    pipe = Pipeline.from_spec(_spec(methods=[{"name": "acl", "code_hidden": 16, "prior_modes": 4,
                                              "prior_mode_radius": 3.0, "prior_mode_std": 0.01}]))
    gen, _ = _parts(pipe)
    z = gen.prior(torch.randn(400, 8))
    dist = torch.cdist(z, gen.centres).min(1).values
    assert dist.max() < 0.1  # every draw sits at one of the four modes
    nearest = torch.cdist(z, gen.centres).argmin(1)
    assert set(nearest.tolist()) == {0, 1, 2, 3}


# ------------------------------------------------------------------------------ gradients

def test_acl_gan_each_loss_trains_only_its_networks():
    torch.manual_seed(0)
    pipe = Pipeline.from_spec(_spec())
    gen, learn = _parts(pipe)
    # optimiser membership: D_c with D, G_z and E with G
    d_ids = {id(p) for g in pipe.trainer.optimizers["d"].param_groups for p in g["params"]}
    g_ids = {id(p) for g in pipe.trainer.optimizers["g"].param_groups for p in g["params"]}
    assert {id(p) for p in learn.code_discriminator.parameters()} <= d_ids
    assert {id(p) for p in gen.parameters()} <= g_ids
    assert {id(p) for p in learn.encoder.parameters()} <= g_ids

    ctx = _phase_ctx(pipe, "d")
    assert _which(pipe, learn.d_terms(ctx)["code_d"]) == {"D_c"}

    terms = _g_terms(pipe)
    assert set(terms) == {"code_g", "reconstruction", "loss/g"}
    assert _which(pipe, terms["code_g"]) == {"G_z"}                 # Alg. 1 line 13
    assert _which(pipe, terms["reconstruction"]) == {"E", "G"}      # Eq. 4, D frozen
    assert _which(pipe, terms["loss/g"]) == {"G"}                   # Eq. 5: not G_z


def test_reconstruction_can_train_the_encoder_only():
    pipe = Pipeline.from_spec(_spec(methods=[{"name": "acl", "code_hidden": 16,
                                              "reconstruction_trains": "encoder"}]))
    assert _which(pipe, _g_terms(pipe)["reconstruction"]) == {"E"}  # Alg. 1 line 11 literally


def test_acl_sgan_classifier_learns_from_labels_and_is_refused_without():
    pipe = Pipeline.from_spec(_spec(methods=[{"name": "acl", "code_hidden": 16,
                                              "inference": "classifier"}]))
    terms = _g_terms(pipe)
    assert _which(pipe, terms["classification"]) == {"E", "head"}
    assert _which(pipe, terms["reconstruction"]) == {"G"}
    with pytest.raises(IncompatibleStackError, match="unlabelled"):
        Pipeline.from_spec(_spec(methods=[{"name": "acl", "inference": "classifier"}],
                                 data={"name": "digits", "resolution": 16, "labelled": False}))
    with pytest.raises(IncompatibleStackError, match="autoencoder"):
        Pipeline.from_spec(_spec("autoencoder", methods=[{"name": "acl", "inference": "classifier"}]))


def test_acl_ae_terms_and_gradients():
    pipe = Pipeline.from_spec(_spec("autoencoder"))
    gen, learn = _parts(pipe)
    assert learn.encoder is None  # the backbone's Enc_x is used, not stored
    ctx = _phase_ctx(pipe, "d")
    assert _which(pipe, learn.d_terms(ctx)["code_d"]) == {"D_c"}
    terms = _g_terms(pipe)
    assert set(terms) == {"code_g", "reconstruction"}
    assert _which(pipe, terms["code_g"]) == {"G_z"}
    assert _which(pipe, terms["reconstruction"]) == {"E", "G"}  # Eq. 2: Enc_x and Dec_x
    x = pipe.last_ctx.real
    torch.testing.assert_close(terms["reconstruction"].detach(),
                               ((pipe.backbone.generator(pipe.backbone.encoder(x)) - x) ** 2).mean().detach())


def test_acl_gan_gp_stack_trains():
    pipe = Pipeline.from_spec(_spec(loss="wgan", methods=[{"name": "gp"},
                                                          {"name": "acl", "code_hidden": 16}]))
    logs = pipe.train(steps=2, progress=False)
    assert {"gp/gp", "acl/code_d", "acl/code_g", "acl/reconstruction"} <= set(logs)
    assert all(math.isfinite(v) for v in logs.values())


def test_refused_on_a_backbone_without_discriminator_or_autoencoder():
    from gantk_plugins.acl import check
    from gantk_plugins.acl.components import ACLParams

    class NoD:
        provides = frozenset({"encoder"})
        discriminator = None

    class Ctx:
        backbone = NoD()
        spec = type("S", (), {"backbone": type("B", (), {"name": "toy"})()})()

    with pytest.raises(ValueError, match="neither"):
        check(ACLParams(), Ctx())


# ------------------------------------------------------------------------------ behaviour

def test_samples_decode_code_generator_output():
    pipe = Pipeline.from_spec(_spec())
    pipe.train(steps=1, progress=False)
    gen, _ = _parts(pipe)
    torch.manual_seed(3)
    x, z_in, _ = pipe.sample(6, return_latents=True)
    torch.manual_seed(3)
    z = pipe.backbone.sample_latent(6)
    torch.testing.assert_close(z_in, gen.net(z).detach())
    assert isinstance(gen, LatentTransform) and x.shape == (6, 1, 16, 16)


def test_sample_codes_prior_decodes_the_prior_draw_of_the_same_trained_autoencoder():
    """The plain-autoencoder baseline of the ACL-AE sweep: ``sample_codes = "prior"`` changes
    sampling only, so both runs train bit-identical Enc_x / Dec_x, and samples are Dec_x(z)."""
    acl = {"name": "acl", "code_hidden": 16}
    runs = [Pipeline.from_spec(_spec("autoencoder", methods=[{**acl, "sample_codes": mode}]))
            for mode in ("generator", "prior")]
    for pipe in runs:
        pipe.train(steps=3, progress=False)
    a, b = (pipe.backbone.state_dict() for pipe in runs)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    plain, gen = runs[1], _parts(runs[0])[0]
    torch.manual_seed(5)
    x, z_in, _ = plain.sample(6, return_latents=True)
    torch.manual_seed(5)
    z = plain.backbone.sample_latent(6)
    torch.testing.assert_close(z_in, z)  # G_z bypassed
    with torch.no_grad():
        plain.backbone.eval()
        torch.testing.assert_close(x, plain.backbone.generator(z).cpu())
        assert not torch.allclose(gen.net(z), z)  # whereas ACL's sampler would move the codes


def test_acl_on_a_vae_matches_the_posterior_means_and_trains_the_vae_objective():
    """The VAE baseline (``backbone.kl_weight`` > 0): the code game sees the k-dim posterior
    means, not Enc_x's 2k outputs, and the G phase's reconstruction term carries the KL."""
    pipe = Pipeline.from_spec(_spec("autoencoder", kl_weight=0.5))
    _, learn = _parts(pipe)
    x = torch.rand(8, 1, 16, 16) * 2 - 1
    bb = pipe.backbone
    assert bb.encoder(x).shape == (8, 16)
    torch.testing.assert_close(learn.encode(x, bb), bb.posterior(x).mean)
    bb.eval()
    with torch.no_grad():
        rec = torch.nn.functional.mse_loss(bb.generator(bb.encode(x)), x)
        assert bb.reconstruction_loss(x) > rec  # + beta * KL / D
    bb.train()
    pipe.train(steps=3, progress=False)
    assert pipe.sample(4).shape == (4, 1, 16, 16)


def test_a_checkpoint_saved_before_an_option_existed_still_loads_and_resumes(tmp_path):
    """A run's stored spec lists every option of its day; an option a plugin added since
    (here ``sample_codes``) compares equal at its default, while a real difference is refused."""
    import json

    from gantk.store.checkpoint import Checkpoint, save_checkpoint
    from gantk.base.errors import CheckpointError

    pipe = Pipeline.from_spec(_spec("autoencoder"))
    pipe.train(steps=1, progress=False)
    old = pipe.spec.to_dict()
    del old["methods"][0]["sample_codes"]  # as written before the option existed
    path = save_checkpoint(tmp_path / "old.safetensors", modules=pipe.modules(),
                           optimizers=pipe.trainer.optimizers, rng=pipe.rng_state(),
                           step=pipe.step, spec_json=json.dumps(old, sort_keys=True),
                           plugins=pipe.plugin_versions())
    assert "sample_codes" not in Checkpoint(path).spec["methods"][0]
    assert Pipeline.load(path).step == 1
    resumed = Pipeline.from_spec(_spec("autoencoder"))
    resumed.load_checkpoint(path)  # the resume path: this stack against the stored spec
    other = Pipeline.from_spec(_spec("autoencoder", methods=[
        {"name": "acl", "code_hidden": 16, "sample_codes": "prior"}]))
    with pytest.raises(CheckpointError, match="different methods"):
        other.load_checkpoint(path)


def test_acl_ae_losses_go_down():
    torch.manual_seed(0)
    spec = _spec("autoencoder")
    spec["train"].update(batch_size=32, lr_g=1e-3)
    pipe = Pipeline.from_spec(spec)
    first = pipe.train(steps=1, progress=False)["acl/reconstruction"]
    pipe.train(steps=40, progress=False)
    x = pipe.real_data()[0][:256]
    with torch.no_grad():
        pipe.backbone.eval()
        later = pipe.backbone.reconstruction_loss(x).item()
    assert later < 0.7 * first


def test_interpolation_function_and_cli(tmp_path, cli):
    pipe = Pipeline.from_spec(_spec())
    pipe.train(steps=1, progress=False)
    x = pipe.real_data()[0]
    mid = interpolate(pipe, x[:3], x[3:6], steps=5)
    assert mid.shape == (3, 5, 1, 16, 16)
    _, learn = _parts(pipe)
    pipe.backbone.eval(); learn.eval()
    with torch.no_grad():
        ends = pipe.backbone.generator(learn.encoder(x[:3]))
    pipe.backbone.train(); learn.train()
    torch.testing.assert_close(mid[:, 0], ends)  # t = 0 decodes x_a's code
    rows = interpolation_rows(pipe, x[:3], x[3:6], steps=5)
    assert rows.shape == (21, 1, 16, 16)
    torch.testing.assert_close(rows[0], x[0])
    pipe.save(tmp_path / "run")
    code, out, err = cli("interpolate", tmp_path / "run", "--out", tmp_path / "g.png",
                         "--pairs", 2, "--steps", 4)
    assert code == 0, err
    assert (tmp_path / "g.png").stat().st_size > 0


def test_interpolate_cli_refuses_stack_without_encoder(tmp_path, cli):
    spec = _spec(methods=[])
    pipe = Pipeline.from_spec(spec)
    pipe.save(tmp_path / "plain")
    code, _, err = cli("interpolate", tmp_path / "plain", "--out", tmp_path / "g.png")
    assert code == 2 and "encode" in err


def test_acl_ae_resumed_run_equals_uninterrupted_run(tmp_path):
    """The k-mode prior draws its mode indices from the checkpointed RNG: resuming is exact."""
    import json

    spec = _spec("autoencoder", methods=[{"name": "acl", "code_hidden": 16, "prior_modes": 4}])
    spec["train"].update(steps=4, ckpt_every=2)

    def losses(run):
        rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
        return [{k: v for k, v in r.items() if k.startswith("acl/")} for r in rows if "acl/code_g" in r]

    Pipeline.from_spec(spec).train(out=tmp_path / "full", progress=False)
    half = dict(spec, train={**spec["train"], "steps": 2})
    Pipeline.from_spec(half).train(out=tmp_path / "half", progress=False)
    Pipeline.from_spec(spec).train(out=tmp_path / "half", progress=False)
    assert losses(tmp_path / "half") == losses(tmp_path / "full") != []
