"""The adversarial autoencoder baseline (``aae``, Makhzani et al. 2015): its losses on known
logits, which networks each term trains, that training pulls the codes onto the prior, sampling,
and the refusals."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from gantk import IncompatibleStackError, Pipeline
from gantk.metrics.fid import frechet_distance
from gantk_plugins.baselines import AdversarialAutoencoder
from gantk_plugins.baselines.aae import discriminator_loss, encoder_loss

LOG2 = math.log(2.0)


def _spec(data=None, methods=None, **backbone):
    image = data is None
    return {"seed": 0,
            "backbone": {"name": "autoencoder", "latent_dim": 8 if image else 2,
                         **({"width": 4} if image else {"hidden": [64, 64]}), **backbone},
            "data": data or {"name": "digits", "resolution": 16},
            "methods": methods or [{"name": "aae", "code_hidden": 16}],
            "train": {"steps": 2, "batch_size": 8 if image else 100, "device": "cpu",
                      "sample_every": 0, "ckpt_every": 0, "log_every": 1,
                      "lr_g": 1e-3, "lr_d": 1e-3, "betas": [0.5, 0.999]}}


def test_losses_on_known_logits():
    zero = torch.zeros(5)
    assert discriminator_loss(zero, zero).item() == pytest.approx(2 * LOG2)  # chance
    assert encoder_loss(zero).item() == pytest.approx(LOG2)
    big = torch.full((5,), 30.0)
    assert discriminator_loss(big, -big).item() == pytest.approx(0.0, abs=1e-9)  # D_z is right
    assert discriminator_loss(-big, big).item() == pytest.approx(60.0, rel=1e-6)
    assert encoder_loss(big).item() == pytest.approx(0.0, abs=1e-9)  # codes pass as prior draws


def _grads(pipe, term):
    for m in pipe.modules().values():
        for p in m.parameters():
            p.grad = None
    term.backward()
    aae = next(c for c in pipe.components if isinstance(c, AdversarialAutoencoder))
    nets = {"E": pipe.backbone.encoder, "Dec": pipe.backbone.generator,
            "D_z": aae.code_discriminator}
    return {k for k, net in nets.items()
            if any(p.grad is not None and p.grad.abs().sum() > 0 for p in net.parameters())}


def test_each_term_trains_only_its_networks():
    pipe = Pipeline.from_spec(_spec())
    aae = next(c for c in pipe.components if isinstance(c, AdversarialAutoencoder))
    real, real_y = next(iter(pipe.stream))
    ctx = pipe.step_context("d", real=real, real_y=real_y, step=1)
    assert _grads(pipe, aae.d_terms(ctx)["code_d"]) == {"D_z"}  # E(x) without grad
    terms = aae.g_terms(pipe.step_context("g", real=real, real_y=real_y, step=1))
    assert set(terms) == {"reconstruction", "code_g"}
    assert _grads(pipe, terms["code_g"]) == {"E"}  # D_z held fixed, Dec not involved
    terms = aae.g_terms(pipe.step_context("g", real=real, real_y=real_y, step=1))
    assert _grads(pipe, terms["reconstruction"]) == {"E", "Dec"}
    assert all(p.requires_grad for p in aae.code_discriminator.parameters())  # restored


def _code_distance(pipe) -> float:
    """Frechet distance between a Gaussian fitted to the codes of 1,000 training points and the
    prior N(0, I)."""
    x = torch.cat([next(iter(pipe.stream))[0] for _ in range(10)])
    with torch.no_grad():
        codes = pipe.backbone.encode(x.to(pipe.device)).double().numpy()
    dim = codes.shape[1]
    return frechet_distance(codes.mean(0), np.cov(codes, rowvar=False), np.zeros(dim), np.eye(dim))


def test_training_pulls_the_codes_onto_the_prior():
    """On the 25-Gaussian grid with 2-d codes: after 300 steps the codes of an AAE are close to
    N(0, I) (0.005 here); with the adversarial weight at 0 (the same autoencoder trained by
    its reconstruction alone) they spread far wider (12)."""
    grid = {"name": "grid", "per_mode": 40}
    dist = {}
    for weight in (1.0, 0.0):
        pipe = Pipeline.from_spec(_spec(grid, [{"name": "aae", "code_hidden": 64,
                                                "code_adversarial_weight": weight}]))
        logs = pipe.train(steps=300, progress=False)
        dist[weight] = _code_distance(pipe)
        assert logs["aae/reconstruction"] < 0.05  # both still reconstruct
    assert dist[1.0] < 0.3, dist
    assert dist[0.0] > 5.0, dist


def test_samples_decode_prior_draws():
    pipe = Pipeline.from_spec(_spec())
    pipe.train(steps=1, progress=False)
    torch.manual_seed(3)
    x = pipe.sample(6)
    torch.manual_seed(3)
    z = pipe.backbone.sample_latent(6)
    pipe.backbone.eval()
    with torch.no_grad():
        torch.testing.assert_close(x, pipe.backbone.generator(z).cpu())


@pytest.mark.parametrize("spec, match", [
    (_spec(methods=[{"name": "aae"}, {"name": "acl"}]), "acl"),
    (_spec(kl_weight=1.0), "kl_weight"),
    ({**_spec(), "backbone": {"name": "dcgan", "width": 4, "latent_dim": 8}}, "autoencoder"),
])
def test_refusals(spec, match):
    with pytest.raises(IncompatibleStackError, match=match):
        Pipeline.from_spec(spec)
