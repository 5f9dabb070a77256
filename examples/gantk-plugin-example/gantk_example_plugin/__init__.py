"""Feature matching (Salimans et al. 2016, Sec. 3.1) as a gantk Regularizer.

G's loss gains ``weight * || mean_x f(x) - mean_z f(G(z)) ||_2^2`` where ``f`` is D's feature
layer. The real features are a constant for G (D is frozen in the G step anyway).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field
from torch import Tensor

import gantk


class FeatureMatchingParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    weight: float = Field(1.0, ge=0, description="weight of the feature-matching term")


def feature_matching(real_features: Tensor, fake_features: Tensor) -> Tensor:
    """Squared L2 distance between the batch means of real and generated D features."""
    return (real_features.detach().mean(0) - fake_features.mean(0)).pow(2).sum()


class FeatureMatching(gantk.Regularizer):
    def __init__(self, *, params: FeatureMatchingParams) -> None:
        super().__init__()
        self.weight = params.weight

    def g_terms(self, ctx: gantk.StepContext) -> dict[str, Tensor]:
        return {"fm": self.weight * feature_matching(ctx.real_features, ctx.fake_features)}


@gantk.hookimpl
def gantk_register(register) -> None:
    register.regularizer(
        "feature_matching",
        lambda params, ctx: FeatureMatching(params=params),
        params=FeatureMatchingParams,
        summary="match the batch mean of D's features on real and generated images",
        paper="Salimans et al. 2016, Improved Techniques for Training GANs",
        needs=["d_features"],
    )
