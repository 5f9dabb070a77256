"""Checkpoints: one safetensors file per save, written atomically, loaded without executing code.

Layout of the tensor keys: ``model.<module path>`` for every network (backbone, EMA, components),
``optim.<name>.<param index>.<state key>`` for optimiser tensors, ``rng.<name>`` for RNG states.
String metadata (safetensors allows strings only): ``format`` = ``gantk-checkpoint``,
``format_version``, ``step``, ``spec`` (the resolved stack as JSON), ``plugins`` (versions used),
``optim`` (JSON of optimiser hyper-parameters and non-tensor state), ``extra`` (JSON).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import Tensor

from .errors import CheckpointError

FORMAT = "gantk-checkpoint"
FORMAT_VERSION = "1"


def _atomic_write(path: Path, tensors: dict[str, Tensor], metadata: dict[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        save_file(tensors, tmp, metadata=metadata)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)  # atomic on POSIX: readers see the old file or the new, never half
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    try:  # make the rename itself durable
        dfd = os.open(path.parent, os.O_RDONLY)
        os.fsync(dfd)
        os.close(dfd)
    except OSError:  # pragma: no cover - not every file system allows it
        pass


def optimizer_to_flat(name: str, opt: torch.optim.Optimizer) -> tuple[dict[str, Tensor], Any]:
    sd = opt.state_dict()
    tensors: dict[str, Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for pid, state in sd["state"].items():
        for key, value in state.items():
            if isinstance(value, Tensor):
                tensors[f"optim.{name}.{pid}.{key}"] = value.detach().clone().contiguous()
            else:
                scalars.setdefault(str(pid), {})[key] = value
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def optimizer_from_flat(name: str, opt: torch.optim.Optimizer, tensors: dict[str, Tensor],
                        meta: Any) -> None:
    state: dict[int, dict[str, Any]] = {}
    prefix = f"optim.{name}."
    for key, value in tensors.items():
        if key.startswith(prefix):
            pid, skey = key[len(prefix):].split(".", 1)
            state.setdefault(int(pid), {})[skey] = value
    for pid, values in meta.get("scalars", {}).items():
        state.setdefault(int(pid), {}).update(values)
    opt.load_state_dict({"state": state, "param_groups": meta["param_groups"]})


def save_checkpoint(path: str | Path, *, modules: dict[str, torch.nn.Module],
                    optimizers: dict[str, torch.optim.Optimizer], rng: dict[str, Tensor],
                    step: int, spec_json: str, plugins: dict[str, str],
                    extra: dict[str, Any] | None = None) -> Path:
    path = Path(path)
    tensors: dict[str, Tensor] = {}
    for mname, module in modules.items():
        for key, value in module.state_dict().items():
            # clone: safetensors refuses tensors that share memory (tied weights, views)
            tensors[f"model.{mname}.{key}"] = value.detach().to("cpu").clone().contiguous()
    optim_meta = {}
    for oname, opt in optimizers.items():
        flat, meta = optimizer_to_flat(oname, opt)
        tensors.update({k: v.to("cpu") for k, v in flat.items()})
        optim_meta[oname] = meta
    for rname, state in rng.items():
        tensors[f"rng.{rname}"] = state.detach().to("cpu").clone().contiguous()
    metadata = {"format": FORMAT, "format_version": FORMAT_VERSION, "step": str(step),
                "spec": spec_json, "plugins": json.dumps(plugins, sort_keys=True),
                "optim": json.dumps(optim_meta), "extra": json.dumps(extra or {})}
    _atomic_write(path, tensors, metadata)
    return path


class Checkpoint:
    """A checkpoint read into memory (tensors on CPU) with its metadata checked."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.tensors, self.metadata = read_checkpoint(self.path)
        self.step = int(self.metadata["step"])
        self.spec = json.loads(self.metadata["spec"])
        self.plugins = json.loads(self.metadata.get("plugins", "{}"))
        self.optim = json.loads(self.metadata.get("optim", "{}"))
        self.extra = json.loads(self.metadata.get("extra", "{}"))

    def module_state(self, name: str) -> dict[str, Tensor]:
        prefix = f"model.{name}."
        return {k[len(prefix):]: v for k, v in self.tensors.items() if k.startswith(prefix)}

    def load_module(self, name: str, module: torch.nn.Module) -> None:
        state = self.module_state(name)
        try:
            module.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            first = str(exc).strip().splitlines()
            raise CheckpointError(
                f"the weights of {name!r} do not fit the network the stack builds "
                f"({' '.join(first[:3])[:400]})", where=str(self.path),
                fix="load it with the spec it was trained with (it is stored in the checkpoint; "
                    "Pipeline.load and `gantk sample RUN_DIR` use it), or start a new run directory."
            ) from None

    def load_optimizer(self, name: str, opt: torch.optim.Optimizer) -> None:
        if name not in self.optim:
            raise CheckpointError(f"no optimiser state for {name!r}", where=str(self.path),
                                  fix="resume with the stack the run was started with.")
        try:
            optimizer_from_flat(name, opt, self.tensors, self.optim[name])
        except (ValueError, KeyError, RuntimeError) as exc:
            raise CheckpointError(f"the optimiser state of {name!r} does not fit ({exc})",
                                  where=str(self.path),
                                  fix="resume with the stack the run was started with.") from None

    def rng(self, name: str) -> Tensor | None:
        return self.tensors.get(f"rng.{name}")


def read_extra(path: str | Path) -> dict[str, Any]:
    """The ``extra`` metadata of a checkpoint, without reading its tensors."""
    with safe_open(str(path), framework="pt", device="cpu") as fh:
        return json.loads((fh.metadata() or {}).get("extra", "{}"))


def read_checkpoint(path: Path) -> tuple[dict[str, Tensor], dict[str, str]]:
    if not path.exists():
        raise CheckpointError("file not found", where=str(path), fix="check the path.")
    try:
        with safe_open(str(path), framework="pt", device="cpu") as fh:
            metadata = fh.metadata() or {}
            if metadata.get("format") != FORMAT:
                raise CheckpointError(
                    "this safetensors file is not a gantk checkpoint (its metadata has no "
                    f"format={FORMAT!r})", where=str(path),
                    fix="point at a file under RUN_DIR/checkpoints/ written by gantk; to bring "
                        "foreign weights in, load them into pipe.backbone yourself.")
            if metadata.get("format_version") != FORMAT_VERSION:
                raise CheckpointError(f"checkpoint format version {metadata.get('format_version')!r}"
                                      f" is not supported (this gantk reads {FORMAT_VERSION!r})",
                                      where=str(path), fix="use the gantk version that wrote it.")
            tensors = {k: fh.get_tensor(k) for k in fh.keys()}
    except CheckpointError:
        raise
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"cannot read the checkpoint, it is truncated or not a safetensors "
                              f"file ({exc})", where=str(path),
                              fix="use an earlier checkpoint from the same folder; gantk writes "
                                  "checkpoints atomically, so a damaged file was changed by "
                                  "something else.") from None
    for key in ("step", "spec"):
        if key not in metadata:
            raise CheckpointError(f"the checkpoint metadata lacks {key!r}", where=str(path),
                                  fix="use a checkpoint written by gantk.")
    return tensors, metadata
