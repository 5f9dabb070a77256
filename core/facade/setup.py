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


def check_size(resolved: Any) -> int | None:
    """Count the backbone's parameters on the meta device (nothing is allocated) and refuse a
    stack whose networks would not fit in memory, before anything is built for real: more than
    :data:`MAX_PARAMETERS`, or weights and gradients larger than the memory this process may
    still use (free memory, and the address-space limit of ``ulimit -v``). Returns the count."""
    try:
        with torch.device("meta"):
            meta = _build.build_backbone(resolved)
        n = sum(p.numel() for p in meta.parameters())
    except GantkError:
        raise
    except Exception:  # a backbone that cannot be built on the meta device: no estimate
        return None
    if n > MAX_PARAMETERS:
        raise SpecError(f"the backbone would have {n:,} parameters, more than the "
                        f"{MAX_PARAMETERS:,} gantk builds", where="backbone",
                        fix="lower the widths, latent size or resolution of the backbone.")
    free = available_memory()
    if free is not None and 2 * 4 * n > free:  # float32 weights and their gradients
        raise too_big(n, free)
    return n


def too_big(n: int | None, free: int | None, detail: str = "") -> SpecError:
    """The size refusal: the networks do not fit in the memory this process may use."""
    size = f"{n:,} parameters, {4 * n / 2**30:.1f} GiB of float32 weights (training needs about " \
        f"4 times that with gradients and optimiser state)" if n else "networks"
    room = f"; {free / 2**30:.1f} GiB is available" if free is not None else ""
    return SpecError(f"the backbone's {size} do not fit in this machine's memory{room}"
                     + (f" ({detail})" if detail else ""), where="backbone",
                     fix="lower the resolution (data.resolution), the backbone's widths or its "
                         "latent size, or run where more memory is available.")


def available_memory() -> int | None:
    """Bytes this process may still allocate: the free memory (``MemAvailable``) and, under
    ``ulimit -v``, the address space left; None where neither is known (not Linux)."""
    import resource

    limits = []
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    limits.append(int(line.split()[1]) * 1024)
        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
        if soft != resource.RLIM_INFINITY:
            with open("/proc/self/status") as fh:
                used = next(int(x.split()[1]) * 1024 for x in fh if x.startswith("VmSize:"))
            limits.append(max(soft - used, 0))
    except (OSError, ValueError, StopIteration):
        pass
    return min(limits) if limits else None


def out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` is an allocation failure (CPU or accelerator)."""
    if isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError":
        return True
    text = str(exc) if isinstance(exc, RuntimeError) else ""
    return any(s in text for s in ("can't allocate memory", "out of memory", "std::bad_alloc",
                                   "Cannot allocate memory"))


def nonfinite_fix(run_dir: Path | None) -> str:
    """What to do after a NaN/inf stop, saying truthfully what is on disk."""
    from ..store.rundirs import list_checkpoints
    from ..store.stackkeys import shell

    if run_dir is None:
        return ("nothing was saved (no run directory); lower the learning rates "
                "(train.lr_g, train.lr_d) and train again.")
    found = list_checkpoints(run_dir)
    if not found:
        return (f"no checkpoint was written before the stop, so {run_dir} holds no trained "
                "weights to go on from: run the same command with lower learning rates (--set "
                "train.lr_g=... --set train.lr_d=...); it starts afresh in that directory.")
    step, path = found[-1]
    return (f"the newest checkpoint, {path.name} (step {step}), is intact. To go on from it "
            "with a lower learning rate (or other train.* settings), fork the run into a new "
            "directory: `gantk train STACK.toml --out NEW_RUN "
            f"{shell('--fork-from', run_dir)} --set train.lr_g=... --set train.lr_d=...` (see "
            "docs/reliability.md); running the same command again resumes with the same "
            "settings.")


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
