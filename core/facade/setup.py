"""Setting a Pipeline up: the device, the size check before anything is built, the scale-out
options that change the built networks, and which run directory a loaded checkpoint belongs to.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ..base.errors import GantkError, SpecError
from ..base.safeio import is_dir
from ..stack import build as _build
from ..stack.spec import parse_spec
from ..store.checkpoint import Checkpoint
from ..store.rundirs import same_stack, stored_stack
from ..train import distributed, precision



def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except (RuntimeError, ValueError):
        raise SpecError(f"unknown device {name[:40]!r}", where="train.device",
                        fix='use "auto", "cpu", "mps", "cuda" or "cuda:N".') from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise SpecError(f"device {name!r} was asked for but CUDA is not available", where="train.device",
                        fix='set train.device = "auto" or "cpu".')
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise SpecError(f"device {name!r} was asked for but there are only "
                        f"{torch.cuda.device_count()} CUDA device(s)", where="train.device",
                        fix='use "cuda" or an index below the device count.')
    if dev.type == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        raise SpecError(f"device {name!r} was asked for but MPS is not available",
                        where="train.device", fix='set train.device = "auto" or "cpu".')
    return dev


MAX_PARAMETERS = 1_000_000_000  # 4 GB of float32 weights: beyond this a spec is a mistake


def check_size(resolved: Any) -> None:
    """Count the backbone's parameters on the meta device (nothing is allocated) and refuse a
    stack whose networks would not fit in memory, before anything is built for real."""
    try:
        with torch.device("meta"):
            meta = _build.build_backbone(resolved)
        n = sum(p.numel() for p in meta.parameters())
    except GantkError:
        raise
    except Exception:  # a backbone that cannot be built on the meta device: no estimate
        return
    if n > MAX_PARAMETERS:
        raise SpecError(f"the backbone would have {n:,} parameters, more than the "
                        f"{MAX_PARAMETERS:,} gantk builds", where="backbone",
                        fix="lower the widths, latent size or resolution of the backbone.")


def run_dir_of(given: Path, ckpt: Checkpoint) -> Path | None:
    """The run directory results may be written to: the folder the user named, or for a file
    ``RUN/checkpoints/X.safetensors`` the run it sits in when it holds the same stack. A loose
    or foreign checkpoint has none, so ``gantk eval`` never writes two folders above a file it
    was handed, nor into another stack's run."""
    if is_dir(given):
        return given
    run = ckpt.path.parent.parent
    if ckpt.path.parent.name != "checkpoints":
        return None
    reference = stored_stack(run)
    if reference is None:
        return None
    if not same_stack(reference, ckpt.spec):
        warn(f"{ckpt.path} holds another stack than the run {run} it sits in; nothing is "
              "written into that run")
        return None
    return run


def warn(text: str) -> None:
    from rich.console import Console
    from rich.text import Text

    Console(stderr=True).print(Text.assemble(("warning: ", "yellow"), text), highlight=False)


def scale_out(pipe: Any) -> None:
    """The scale-out options that change the built networks: SyncBatchNorm, channels-last, compile."""
    train = pipe.spec.train
    if train.sync_batchnorm and distributed.world_size() > 1:
        pipe.backbone = distributed.convert_sync_batchnorm(pipe.backbone, pipe.device)
    if train.channels_last and pipe.data_info.kind == "image":
        precision.apply_memory_format(pipe.backbone)
    if train.compile:
        twice = [p.entry.name for p in pipe.resolved.methods if "double_backward" in p.entry.provides]
        if twice:  # refused up front: how PyTorch fails later differs by device and version
            raise SpecError(f"torch.compile cannot differentiate a compiled network twice, and "
                            f"{', '.join(twice)} in this stack do(es) (a penalty taken with "
                            f"create_graph)", where="train.compile",
                            fix="set train.compile = false for this stack, or drop "
                                f"{', '.join(twice)}.")
        precision.compile_networks(pipe.backbone)


def current_form(stored: dict[str, Any], registry: Any) -> dict[str, Any]:
    """A checkpoint's stored spec as this code resolves it, so that an option a plugin added
    since the checkpoint was saved compares equal at its default (the stored spec lists every
    option of its day). A spec this code cannot resolve is compared as stored."""
    try:
        return _build.resolve(parse_spec(stored), registry).spec.to_dict()
    except GantkError:
        return stored
