"""``train.precision`` ("fp32" | "bf16" | "fp16"), ``train.channels_last`` and ``train.compile``.

* bf16 / fp16: every forward of a training step (G, D, the penalties, the I-FGSM searches) runs
  under ``torch.autocast``: matrix products and convolutions in the low precision, reductions
  and losses in float32, parameters and optimiser state stay float32. The backward runs outside
  autocast (it follows the dtypes the forward recorded). Double-backward penalties (gp, r1, path
  length) differentiate the autocast graph, so their gradients carry bf16 rounding (about 3
  significant digits); tests/test_precision.py bounds the difference to float32.
* fp16 adds one ``GradScaler`` per optimiser: the loss is multiplied by a scale before the backward
  and the gradients divided by it before the step; a step whose gradients overflow is skipped and
  the scale halved. The penalties and the I-FGSM searches differentiate through gradients that
  underflow in fp16, so under fp16 they run in float32 (:func:`float32_under_fp16`); prefer bf16
  where the hardware has it. The scale is not checkpointed; after a resume it grows back from
  2**16 within a few steps.
* channels_last: image networks and real batches in NHWC memory order (faster convolutions on
  tensor-core GPUs); the numbers are the same.
* compile: ``nn.Module.compile()`` on the generator and discriminator (their ``forward``; the
  parameter names, hence checkpoints, are unchanged). Calls of ``D.features``/``D.head`` are not
  compiled. PyTorch cannot differentiate a compiled graph twice, so stacks with gp, r1 or path
  length stop at the first step with an error saying so.
"""

from __future__ import annotations

import contextlib
from typing import Any
from collections.abc import Iterator

import torch
from torch import Tensor

from ..base.errors import SpecError

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


class Precision:
    def __init__(self, mode: str, device: torch.device) -> None:
        self.mode = mode
        self.device = device
        self.dtype = DTYPES.get(mode)
        self._scalers: dict[int, torch.amp.GradScaler] = {}
        self.around_step = _AroundStep(self)  # built once: a step enters nothing else

    @property
    def enabled(self) -> bool:
        return self.dtype is not None

    def autocast(self) -> contextlib.AbstractContextManager:
        if not self.enabled:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    def _scaler(self, opt: torch.optim.Optimizer) -> torch.amp.GradScaler | None:
        if self.mode != "fp16":
            return None
        if id(opt) not in self._scalers:
            self._scalers[id(opt)] = torch.amp.GradScaler(self.device.type)
        return self._scalers[id(opt)]

    def scaler_state(self, optimizers: dict[str, torch.optim.Optimizer]) -> dict[str, Any]:
        """Each fp16 GradScaler's state (scale, growth tracker) by optimiser name: a checkpoint
        stores it, so a resumed run skips and scales the same steps as the uninterrupted one."""
        return {name: self._scalers[id(opt)].state_dict() for name, opt in optimizers.items()
                if id(opt) in self._scalers}

    def load_scaler_state(self, optimizers: dict[str, torch.optim.Optimizer],
                          states: Any) -> None:
        if self.mode != "fp16" or not isinstance(states, dict):
            return
        for name, opt in optimizers.items():
            state = states.get(name)
            if isinstance(state, dict) and all(isinstance(state.get(k), (int, float)) for k in
                                               ("scale", "_growth_tracker")):
                self._scaler(opt).load_state_dict(state)

    def backward(self, loss: Tensor, opt: torch.optim.Optimizer) -> None:
        """The backward, outside autocast. In fp32 no autocast context is entered at all (about
        10 us a backward on the CPU), unless the caller's code runs the step under an autocast of
        its own, which the backward then leaves as in bf16/fp16."""
        if self.dtype is None:
            if not torch.is_autocast_enabled(self.device.type):
                loss.backward()
                return
        else:
            scaler = self._scaler(opt)
            loss = scaler.scale(loss) if scaler is not None else loss
        with _no_autocast(self.device):
            loss.backward()

    def step(self, opt: torch.optim.Optimizer) -> None:
        scaler = self._scaler(opt)
        if scaler is None:
            opt.step()
            return
        scaler.step(opt)
        scaler.update()


class _AroundStep:
    """The context of a whole training step (built once per trainer, re-entered every step):
    autocast for bf16/fp16, nothing at all for fp32; and PyTorch's refusal to differentiate a
    compiled graph twice turned into a gantk error."""

    def __init__(self, precision: Precision) -> None:
        self.precision = precision
        self._cast: contextlib.AbstractContextManager | None = None

    def __enter__(self) -> None:
        if self.precision.enabled:
            self._cast = self.precision.autocast()
            self._cast.__enter__()

    def __exit__(self, kind: Any, exc: BaseException | None, tb: Any) -> bool:
        cast, self._cast = self._cast, None
        if cast is not None:
            cast.__exit__(kind, exc, tb)
        if isinstance(exc, RuntimeError) and "double backward" in str(exc):
            raise SpecError("torch.compile cannot differentiate a compiled network twice, which "
                            "a penalty of this stack does (gp, r1 and path length differentiate "
                            "D or G with create_graph)", where="train.compile",
                            fix="set train.compile = false for this stack.") from None
        return False


@contextlib.contextmanager
def _no_autocast(device: torch.device) -> Iterator[None]:
    with torch.autocast(device.type, enabled=False):
        yield


@contextlib.contextmanager
def float32_under_fp16() -> Iterator[None]:
    """Turn autocast off inside when it runs in float16 (bf16 and fp32 are left as they are).

    For computations whose inner gradients underflow in half precision: the double-backward
    penalties (gp, r1, path length) and the I-FGSM latent searches. Measured in
    docs/distributed.md: under fp16 autocast one search step moved 13% of the latent coordinates
    (the rest had a zero gradient), and gp's parameter gradient held NaNs (norm of a zero vector)."""
    off = [dev for dev in ("cuda", "cpu") if torch.is_autocast_enabled(dev)
           and torch.get_autocast_dtype(dev) == torch.float16]
    with contextlib.ExitStack() as stack:
        for dev in off:
            stack.enter_context(torch.autocast(dev, enabled=False))
        yield


def apply_memory_format(module: torch.nn.Module) -> None:
    """Put a network's 4-D weights in channels-last order (in place)."""
    module.to(memory_format=torch.channels_last)


def compile_networks(backbone: torch.nn.Module) -> None:
    for name in ("generator", "discriminator"):
        net = getattr(backbone, name, None)
        if isinstance(net, torch.nn.Module):
            net.compile()
