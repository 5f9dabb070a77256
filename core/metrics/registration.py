"""The first-party metrics, registered through the same pluggy hook a third-party plugin uses.

Entry point: ``gantk-metrics = "gantk.metrics.registration"`` in the ``gantk`` group. A plugin adds a
metric the same way: ``register.metric(name, factory, params=Model, summary=..., paper=...)`` where
``factory(params)`` returns an object following :mod:`gantk.metrics.base`'s protocol.
"""

from __future__ import annotations

from ..stack.hookspecs import hookimpl
from .fid import FID, KID, FIDParams, InceptionScore, ISParams, KIDParams
from .confidence import Confidence, ConfidenceParams
from .jsd import JSD, JSDParams
from .modes import Modes, ModesParams
from .prdc import PRDC, PRDCParams


@hookimpl
def gantk_register(register) -> None:  # noqa: ANN001 - pluggy passes a Registrar
    register.metric(
        "fid", FID, params=FIDParams,
        title="Frechet Inception Distance",
        summary="Frechet distance of Gaussians fitted to real and generated features (lower is "
                "better); Inception features when present, else the shipped classifier's: "
                "gantk-digits-classifier-v1 (digits) or gantk-mnist-classifier-v1 (mnist5k, "
                "stacked_mnist5k, mnist).",
        paper="Heusel et al. 2017, GANs trained by a two time-scale update rule (clean-fid)")
    register.metric(
        "kid", KID, params=KIDParams,
        title="Kernel Inception Distance",
        summary="Unbiased MMD^2 with a cubic kernel on the same features, averaged over subsets "
                "(lower is better).",
        paper="Binkowski et al. 2018, Demystifying MMD GANs (clean-fid)")
    register.metric(
        "is", InceptionScore, params=ISParams,
        title="Inception Score",
        summary="exp E KL(p(y|x) || p(y)) on Inception's softmax, or on the digits or MNIST "
                "classifier's when Inception weights are absent (higher is better; named in "
                "is_space).",
        paper="Salimans et al. 2016, Improved techniques for training GANs")
    register.metric(
        "prdc", PRDC, params=PRDCParams,
        title="Precision, recall, density, coverage",
        summary="k-NN manifold fidelity (precision, density) and diversity (recall, coverage) "
                "in the evaluation feature space (higher is better).",
        paper="Kynkaanniemi et al. 2019; Naeem et al. 2020, Reliable fidelity and diversity "
              "metrics for generative models")
    register.metric(
        "jsd", JSD, params=JSDParams,
        title="JSD of K-means bin occupancies",
        summary="Jensen-Shannon divergence between real and generated shares of K-means bins fit "
                "on real features (lower is better).",
        paper="Richardson and Weiss 2018, On GANs and GMMs")
    register.metric(
        "modes", Modes, params=ModesParams,
        title="Mode coverage",
        summary="Ring/grid: modes covered, high-quality share (within 3 std), KL to uniform; "
                "stacked digits / stacked_mnist5k: modes covered of 1000 and KL to uniform via the "
                "digits / gantk-mnist-classifier-v1 classifier (26,000 samples by default).",
        paper="Metz et al. 2017; Srivastava et al. 2017 (VEEGAN); Lin et al. 2018 (PacGAN)")
    register.metric(
        "confidence", Confidence, params=ConfidenceParams,
        title="Classifier confidence",
        summary="Share of samples the shipped digit classifier assigns to one class with "
                "probability >= threshold (0.9; every channel for stacked digits), beside the "
                "same share on real images; gantk's proxy for AdvLatGAN's and LIS's 'low-quality' "
                "/ 'artifact' samples (higher is better).",
        paper="gantk's operationalisation of AdvLatGAN App. E.4 and LIS's artifact claim")
