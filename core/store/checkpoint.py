"""Checkpoints: one safetensors file per save, written atomically, loaded without executing code.

Layout of the tensor keys: ``model.<module path>`` for every network (backbone, EMA, components),
``optim.<name>.<param index>.<state key>`` for optimiser tensors, ``rng.<name>`` for RNG states.
String metadata (safetensors allows strings only): ``format`` = ``gantk-checkpoint``,
``format_version``, ``step``, ``spec`` (the resolved stack as JSON), ``plugins`` (versions used),
``optim`` (JSON of optimiser hyper-parameters and non-tensor state), ``extra`` (JSON),
``provenance`` (JSON, see :mod:`gantk.provenance`: the package and version of each component,
torch and torchvision versions).
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import Tensor

from ..base.errors import NONFINITE_FIX, CheckpointError, GantkError, TrainingError
from ..base.safeio import RunDirError, atomic_path, regular_file, trim

FORMAT = "gantk-checkpoint"
FORMAT_VERSION = "1"
MAX_STEP = 10**12  # a step beyond this is damage, not training
_STEP = re.compile(r"[0-9]{1,13}")


def _atomic_write(path: Path, tensors: dict[str, Tensor], metadata: dict[str, str]) -> None:
    with atomic_path(path) as tmp:  # readers see the old file or the new, never half
        try:
            save_file(tensors, str(tmp), metadata=metadata)
        except SafetensorError as exc:  # its I/O errors (a full disk) as the OSError they are
            raise _as_os_error(exc, tmp) from None


def _as_os_error(exc: Exception, tmp: Path) -> OSError:  # noqa: ARG001 - the write's temp file
    """safetensors reports a failed write as ``SafetensorError("... Os { code: 28, ... }")``:
    the errno, so that the write's paragraph (full disk, read-only...) names the file."""
    found = re.search(r"code: (\d+)", str(exc))
    code = int(found.group(1)) if found else errno.EIO
    return OSError(code, os.strerror(code) if found else trim(exc, 200))  # named: the target


def tensor_digest(tensors: dict[str, Tensor]) -> str:
    """SHA-256 over every tensor's name, dtype, shape and bytes (stored as ``sha256``)."""

    h = hashlib.sha256()
    for key in sorted(tensors):
        t = tensors[key].detach().to("cpu").contiguous()
        h.update(f"{key}|{t.dtype}|{tuple(t.shape)}|".encode())
        if t.numel():
            h.update(t.reshape(-1).view(torch.uint8).numpy())
    return h.hexdigest()


def check_finite(modules: dict[str, torch.nn.Module]) -> list[str]:
    """Names of the floating-point parameters and buffers that hold NaN or inf (cheap: one
    min/max reduction per tensor, which NaN and inf both reach; no per-element copies)."""

    bad = []
    for mname, module in modules.items():
        for key, value in module.state_dict().items():
            if value.is_floating_point() and value.numel() and not _finite(value.detach()):
                bad.append(f"{mname}.{key}")
    return bad


def _finite(t: Tensor) -> bool:
    try:
        lo, hi = torch.aminmax(t)
    except RuntimeError:  # a dtype without aminmax on this device
        return bool(torch.isfinite(t).all())
    return bool(torch.isfinite(lo) & torch.isfinite(hi))


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
                    extra: dict[str, Any] | None = None,
                    provenance: dict[str, Any] | None = None) -> Path:
    path = Path(path)
    bad = check_finite(modules)
    if bad:  # never write a broken model: the previous checkpoint stays the newest
        raise TrainingError(
            f"at step {step} the weights became non-finite (NaN or inf in "
            f"{trim(', '.join(bad[:5]), 300)}{' ...' if len(bad) > 5 else ''}); no checkpoint "
            "was written", where=str(path),
            fix=NONFINITE_FIX)
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
                "optim": json.dumps(optim_meta), "extra": json.dumps(extra or {}),
                "provenance": json.dumps(provenance or {}, sort_keys=True),
                "sha256": tensor_digest(tensors)}
    _atomic_write(path, tensors, metadata)
    return path


class Checkpoint:
    """A checkpoint read into memory (tensors on CPU) with its metadata checked."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.tensors, self.metadata = read_checkpoint(self.path)
        step = self.metadata["step"]
        if not _STEP.fullmatch(step) or int(step) > MAX_STEP:
            raise CheckpointError(f"the step in the metadata is not a plausible step number "
                                  f"({trim(step, 40)!r})", where=str(self.path), fix=_DAMAGED)
        self.step = int(step)
        self.spec = self._json("spec", None)
        self.plugins = self._json("plugins", "{}")
        self.optim = self._json("optim", "{}")
        self.extra = self._json("extra", "{}")
        self.provenance = self._json("provenance", "{}")  # absent in older checkpoints
        digest = self.metadata.get("sha256")
        if digest is not None and digest != tensor_digest(self.tensors):
            raise CheckpointError("the tensor data does not match the checksum in the metadata "
                                  "(the file was changed after gantk wrote it)",
                                  where=str(self.path), fix=_DAMAGED)

    def _json(self, key: str, default: str | None) -> dict[str, Any]:
        """A metadata field that must hold a JSON object (the stored spec is data, never a path)."""
        text = self.metadata.get(key, default)
        try:
            value = json.loads(text) if isinstance(text, str) else None
        except (ValueError, RecursionError):
            value = None
        if not isinstance(value, dict):
            raise CheckpointError(f"the metadata field {key!r} is not a JSON object",
                                  where=str(self.path), fix=_DAMAGED)
        return value

    def module_state(self, name: str) -> dict[str, Tensor]:
        prefix = f"model.{name}."
        return {k[len(prefix):]: v for k, v in self.tensors.items() if k.startswith(prefix)}

    def load_module(self, name: str, module: torch.nn.Module) -> None:
        state = self.module_state(name)
        try:
            module.load_state_dict(state, strict=True)
        except GantkError as exc:  # a component's own load hook: its message and fix, this file
            raise CheckpointError(f"the weights of {name!r} cannot be loaded: {exc.message}"
                                  + (f" ({exc.where})" if exc.where else ""),
                                  where=str(self.path), fix=exc.fix) from None
        except RuntimeError as exc:
            first = str(exc).strip().splitlines()
            text = " ".join(first[:3])[:400]
            raise CheckpointError(f"the weights of {name!r} do not fit the network the stack builds "
                                  f"({text})", where=str(self.path),
                                  fix="load it with the spec it was trained with (it is stored in "
                                      "the checkpoint; Pipeline.load and `gantk sample RUN_DIR` "
                                      "use it), or start a new run directory.") from None

    def check_optimizer(self, name: str, opt: torch.optim.Optimizer) -> None:
        """Refuse optimiser state that does not fit ``opt``'s parameters (before touching it)."""
        meta = self.optim.get(name)
        params = [p for g in opt.param_groups for p in g["params"]]
        groups = meta.get("param_groups") if isinstance(meta, dict) else None
        if not isinstance(groups, list) or len(groups) != len(opt.param_groups) or not all(
                isinstance(g, dict) and isinstance(g.get("params"), list)
                and len(g["params"]) == len(mine["params"])
                and all(_plain(v) for k, v in g.items() if k != "params")
                for g, mine in zip(groups, opt.param_groups)):
            raise CheckpointError(f"no usable optimiser state for {name!r} (its parameter groups "
                                  "do not fit this stack's optimiser)", where=str(self.path),
                                  fix="resume with the stack the run was started with.")
        prefix = f"optim.{name}."
        for key, value in self.tensors.items():
            if not key.startswith(prefix):
                continue
            pid, _, skey = key[len(prefix):].partition(".")
            ok = pid.isdigit() and int(pid) < len(params)
            if ok and value.numel() != 1:
                ok = tuple(value.shape) == tuple(params[int(pid)].shape)
            if not ok:
                raise CheckpointError(f"the optimiser tensor {trim(key, 80)!r} has shape "
                                      f"{tuple(value.shape)}, which fits no parameter of {name!r}",
                                      where=str(self.path), fix=_DAMAGED)

    def check_rng(self) -> None:
        """Refuse RNG states of the wrong type or size (before touching the global RNG)."""
        want = torch.get_rng_state()
        rng = self.rng("torch")
        if rng is not None and (rng.dtype != want.dtype or rng.shape != want.shape):
            raise CheckpointError(f"the stored RNG state has shape {tuple(rng.shape)} and type "
                                  f"{rng.dtype}, not {tuple(want.shape)} {want.dtype}",
                                  where=str(self.path), fix=_DAMAGED)
        for key in ("rng.data.gen", "rng.data.perm", "rng.data.pos"):
            t = self.tensors.get(key)
            if key == "rng.data.gen" and t is not None and t.dtype != torch.uint8:
                raise CheckpointError("the stored data-order state is damaged", where=str(self.path),
                                      fix=_DAMAGED)
            if key == "rng.data.pos" and t is not None and t.numel() != 2:
                raise CheckpointError("the stored data position is damaged", where=str(self.path),
                                      fix=_DAMAGED)

    def load_optimizer(self, name: str, opt: torch.optim.Optimizer) -> None:
        if name not in self.optim:
            raise CheckpointError(f"no optimiser state for {name!r}", where=str(self.path),
                                  fix="resume with the stack the run was started with.")
        try:
            optimizer_from_flat(name, opt, self.tensors, self.optim[name])
        except (ValueError, KeyError, RuntimeError, TypeError, AttributeError) as exc:
            raise CheckpointError(f"the optimiser state of {name!r} does not fit ({trim(exc, 200)})",
                                  where=str(self.path),
                                  fix="resume with the stack the run was started with.") from None

    def rng(self, name: str) -> Tensor | None:
        return self.tensors.get(f"rng.{name}")


def _plain(value: Any) -> bool:
    """An optimiser hyper-parameter as JSON can hold it: a number, bool, None, string, or a
    short list of numbers (betas)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return True
    return isinstance(value, list) and len(value) <= 8 and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)


_DAMAGED = ("use an earlier checkpoint from the same folder (a run directory falls back to the "
            "newest intact one by itself); gantk writes checkpoints atomically, so a damaged file "
            "was changed by something else.")


def read_extra(path: str | Path) -> dict[str, Any]:
    """The ``extra`` metadata of a checkpoint, without reading its tensors."""
    with safe_open(str(regular_file(path, what="checkpoint")), framework="pt", device="cpu") as fh:
        extra = json.loads((fh.metadata() or {}).get("extra", "{}"))
    return extra if isinstance(extra, dict) else {}


def read_checkpoint(path: Path) -> tuple[dict[str, Tensor], dict[str, str]]:
    try:
        regular_file(path, what="checkpoint")
    except RunDirError as exc:
        raise CheckpointError(exc.message, where=exc.where, fix=exc.fix) from None
    try:
        with safe_open(str(path), framework="pt", device="cpu") as fh:
            metadata = fh.metadata() or {}
            if metadata.get("format") != FORMAT:
                raise CheckpointError(
                    "this safetensors file is not a gantk checkpoint (its metadata has no "
                    f"format={FORMAT!r})", where=str(path),
                    fix="point at a file under RUN_DIR/checkpoints/ written by gantk; to bring "
                        "foreign weights in, load them into pipe.backbone yourself.")
            version = metadata.get("format_version")
            if version != FORMAT_VERSION:
                raise CheckpointError(f"checkpoint format version {trim(repr(version), 40)} is "
                                      f"not supported (this gantk reads {FORMAT_VERSION!r})",
                                      where=str(path), fix="use the gantk version that wrote it.")
            tensors = {k: fh.get_tensor(k) for k in fh.keys()}
    except CheckpointError:
        raise
    except (SafetensorError, OSError, ValueError, RuntimeError, TypeError, OverflowError) as exc:
        raise CheckpointError(f"cannot read the checkpoint, it is truncated or not a safetensors "
                              f"file ({trim(exc, 200)})", where=str(path),
                              fix="use an earlier checkpoint from the same folder; gantk writes "
                                  "checkpoints atomically, so a damaged file was changed by "
                                  "something else.") from None
    for key in ("step", "spec"):
        if key not in metadata:
            raise CheckpointError(f"the checkpoint metadata lacks {key!r}", where=str(path),
                                  fix="use a checkpoint written by gantk.")
    return tensors, metadata
