"""The matrix: every registered stackable component on every registered backbone, at tiny size.

Each cell builds a Pipeline from a dict spec, trains two steps, samples, saves a run directory and
loads it back (the reloaded pipeline must hold the same weights and draw the same samples from the
same seed). A cell that cannot work must be refused while the stack is built, with an
IncompatibleStackError, and only for a reason the registry declares: the method ``needs``
something (a discriminator, D features, labels, ...) that the backbone and data do not provide.
The matrix grows by itself: a plugin that registers a backbone or a method adds a row or a column.

Run it alone with ``pytest -m matrix``.
"""

from __future__ import annotations

import pytest
import torch

from gantk import IncompatibleStackError, Pipeline, get_registry
from gantk.stack.registry import STACKABLE
from tiny import TEST_DEVICE, tiny_spec

pytestmark = pytest.mark.matrix

#: methods whose defaults are costly at test size (searches, post-training fits): fewer iterations
TINY_METHODS = {
    "advlat_z": {"steps": 3},
    "reverser": {"steps": 3, "progress": False},
}


_registry = get_registry()
BACKBONES = _registry.names("backbone")
METHODS = ["none", *_registry.names(STACKABLE)]


def _spec(backbone: str, method: str) -> dict:
    methods = [] if method == "none" else [{"name": method, **TINY_METHODS.get(method, {})}]
    spec = tiny_spec(backbone, methods, device=TEST_DEVICE, log_every=1)
    entry = _registry.entries.get(method)
    fields = _registry.entries[backbone].params.model_fields
    if entry is not None and entry.needs & {"labels", "conditional"} and "conditional" in fields:
        spec["backbone"]["conditional"] = True
    return spec


def _provided(backbone: str, spec: dict) -> set[str]:
    """What the backbone and data of ``spec`` provide, built without any method."""

    data_options = {k: v for k, v in spec["data"].items() if k != "name"}
    data_entry = _registry.entries[spec["data"]["name"]]
    info = data_entry.info(data_entry.make_params(data_options, where="data"))
    entry = _registry.entries[backbone]
    options = {k: v for k, v in spec["backbone"].items() if k != "name"}
    built = entry.factory(entry.make_params(options, where="backbone"), info)
    caps = set(built.provides)
    if info.labelled:
        caps.add("labels")
    if info.kind == "image":
        caps.add("images")
    if built.num_classes:
        caps.add("conditional")
    return caps


def _declared_refusal(backbone: str, method: str, spec: dict) -> set[str]:
    """What this cell lacks (empty: the cell must train).

    A method's ``needs`` must be met by the backbone and data. And something must train G: the
    adversarial game when the backbone has a discriminator, otherwise a method that declares
    ``provides = ["generator_objective"]`` (ACL-AE's reconstruction on ``backbone=autoencoder``)."""

    provided = _provided(backbone, spec)
    entry = _registry.entries.get(method)
    missing = set() if entry is None else set(entry.needs) - provided
    trains_g = "discriminator" in provided or (
        entry is not None and "generator_objective" in entry.provides)
    if not trains_g:
        missing.add("discriminator")
    return missing


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("backbone", BACKBONES)
def test_method_on_backbone(backbone, method, tmp_path):
    torch.manual_seed(0)
    spec = _spec(backbone, method)
    missing = _declared_refusal(backbone, method, spec)
    if missing:
        with pytest.raises(IncompatibleStackError) as info:
            Pipeline.from_spec(spec)
        # the message names the method or the backbone, so the user knows what to change
        assert method in str(info.value) or backbone in str(info.value), str(info.value)
        return
    pipe = Pipeline.from_spec(spec)
    logs = pipe.train(steps=2, progress=False)
    assert pipe.step == 2
    assert logs and all(torch.isfinite(torch.tensor(v)) for v in logs.values()), logs
    samples = pipe.sample(4)
    assert samples.shape == (4, *pipe.data_info.shape)
    assert torch.isfinite(samples).all()

    pipe.save(tmp_path / "run")
    loaded = Pipeline.load(tmp_path / "run")
    assert loaded.step == 2
    mine, theirs = pipe.backbone.state_dict(), loaded.backbone.state_dict()
    assert mine.keys() == theirs.keys()
    for key in mine:
        torch.testing.assert_close(theirs[key], mine[key], msg=f"{key} differs after loading")
    torch.manual_seed(1)
    again = pipe.sample(4)
    torch.manual_seed(1)
    torch.testing.assert_close(loaded.sample(4), again)
