"""Multi-process training under ``torchrun``: process group, shares, gradient averaging, gathers.

One run on N processes (``torchrun --nproc_per_node=N $(which gantk) train ...``). Each process
("rank") builds the same pipeline from the same seed, so every network starts identical, and:

* draws its own share of every global batch: the data stream and the latent draws run on a
  *shared* random stream (the same on every rank, the one a single process would use) and each
  rank keeps its contiguous slice (:meth:`World.share`), so the N ranks together see exactly the
  batch one process would (``train.batch_size`` stays the global batch);
* averages gradients before every optimiser step (D, G, every auxiliary optimiser) with one
  explicit all-reduce per update (:meth:`World.average_gradients`), weighted by each rank's share;
* agrees on whether the losses were finite: the same all-reduce carries a flag, so a non-finite
  loss on any rank stops every rank before any of them steps.

Why an explicit all-reduce instead of ``DistributedDataParallel``: gantk calls ``D.features`` and
``D.head`` directly and several times before one backward (real and fake batch, penalties), the
I-FGSM searches differentiate through G and D with ``torch.autograd.grad`` to the latents only,
and one network's parameters are stepped by different optimisers (LIS modules, ACL's code nets).
DDP synchronises only through its wrapper's ``forward`` and expects one backward per forward; its
buffer broadcast writes BatchNorm/spectral-norm buffers in place between two forwards, which makes
the backward fail ("modified by an inplace operation", pytorch issue 175024). Averaging the
``.grad`` of each optimiser's parameters right before ``step()`` is correct for all of these, and
the searches never touch ``.grad``, so they cannot trigger a synchronisation. The cost: the
all-reduce does not overlap the backward as DDP's buckets do.

Random draws other than the latents and the data order (gp's interpolation weights, CLR's
augmentations, pair starts) come from a per-rank stream seeded from (seed, rank, start step).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator

import torch
import torch.distributed as dist
from torch import Tensor, nn

from ..base.errors import GantkError, SpecError


def _env_int(name: str, default: int) -> int:
    try:
        return int(os.environ.get(name, default))
    except ValueError:
        raise SpecError(f"environment variable {name}={os.environ.get(name)!r} is not an integer",
                        where=name, fix="launch with torchrun, which sets it.") from None


DEFAULT_TIMEOUT_S = 600.0  # train.dist_timeout's default: a hung peer is reported in 10 minutes


def init_from_env(device: torch.device, timeout_s: float = DEFAULT_TIMEOUT_S) -> torch.device:
    """Join the process group torchrun describes (``WORLD_SIZE`` > 1); returns this rank's device.

    ``timeout_s`` (``train.dist_timeout``) bounds how long a collective waits for a peer that
    stopped (SIGSTOP, a hang) before this process fails with :func:`peer_failure`'s message,
    instead of gloo's 30 minutes. Idempotent; a single process (no torchrun, or
    ``--nproc_per_node=1``) is left alone."""
    world = _env_int("WORLD_SIZE", 1)
    if world <= 1 and not dist.is_initialized():
        return device
    local = _env_int("LOCAL_RANK", 0)
    if device.type == "cuda":
        if device.index is None:
            device = torch.device("cuda", local)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        try:
            import datetime

            dist.init_process_group(backend=backend,
                                    timeout=datetime.timedelta(seconds=float(timeout_s)))
        except (RuntimeError, ValueError) as exc:
            raise GantkError(f"cannot join the process group ({backend}): {exc}",
                             where="torchrun environment (MASTER_ADDR, MASTER_PORT, RANK)",
                             fix="launch with `torchrun --standalone --nproc_per_node=N "
                                 "$(which gantk) train ...`, or with --rdzv-endpoint=HOST:PORT "
                                 "reachable from every node.") from None
    return device


# what gloo and NCCL say when a peer process died or hung in a collective
_PEER_SIGNS = ("connection closed by peer", "connection reset by peer", "broken pipe",
               "timed out", "timeout", "nccl communicator was aborted", "socket closed",
               "connection refused", "gloo", "nccl error", "ncclremoteerror",
               "ncclsystemerror", "read error", "failed to recv", "ran out of input")


def peer_failure(exc: BaseException, step: int, run_dir: object = None) -> GantkError | None:
    """The paragraph for a collective that failed because another process died or stopped
    answering (None for any other error, or in a single process)."""
    if world_size() <= 1 or not isinstance(exc, (RuntimeError, OSError, ValueError)) \
            or isinstance(exc, GantkError):
        return None
    text = str(exc)
    if not any(sign in text.lower() for sign in _PEER_SIGNS):
        return None
    from ..base.errors import TrainingError
    from ..base.safeio import trim

    again = f"--out {run_dir}" if run_dir is not None else "the same --out"
    return TrainingError(
        f"[rank {rank()}] another process of this torchrun job died or stopped answering "
        f"during step {step + 1} (its collective failed: {trim(' '.join(text.split()), 200)})",
        where=f"torchrun process group ({world_size()} processes)",
        fix="see the other process's output for why it stopped; then run the same torchrun "
            f"command again with {again}: it resumes from the newest checkpoint, with this or "
            "another number of processes (--nproc_per_node=1 too). A peer that only hangs is "
            "given up on after train.dist_timeout seconds.")


def rank() -> int:
    return dist.get_rank() if dist.is_initialized() else 0


def world_size() -> int:
    return dist.get_world_size() if dist.is_initialized() else 1


def is_main() -> bool:
    """Rank 0 (or a single process): the one that writes files and prints."""
    return rank() == 0


def barrier() -> None:
    if world_size() > 1:
        dist.barrier()


def shutdown(timeout_s: float = 30.0) -> None:
    """Leave the process group. On gloo the ranks first meet at a monitored barrier: a rank that
    tore its group down while a peer was still finishing (rank 0 writes the last checkpoint)
    aborted now and then in gloo's teardown ("terminate called without an active exception").
    A peer that already died makes the barrier fail after ``timeout_s`` instead of hanging, and
    the group is torn down all the same."""

    if not dist.is_initialized():
        return
    if dist.get_world_size() > 1 and dist.get_backend() == "gloo":
        import datetime

        try:
            dist.monitored_barrier(timeout=datetime.timedelta(seconds=timeout_s))
        except RuntimeError:
            pass  # a peer is gone (its own error has been reported): leave anyway
    dist.destroy_process_group()


def share_sizes(n: int, world: int) -> list[int]:
    """How ``n`` items split over ``world`` ranks: contiguous, the first ranks one larger."""
    base, extra = divmod(n, world)
    return [base + (1 if r < extra else 0) for r in range(world)]


def share_slice(n: int, r: int, world: int) -> slice:
    sizes = share_sizes(n, world)
    start = sum(sizes[:r])
    return slice(start, start + sizes[r])


class World:
    """This process's place in the run, and the random stream every rank shares."""

    def __init__(self, device: torch.device, seed: int) -> None:
        self.device = device
        self.rank, self.size = rank(), world_size()
        self.seed = seed
        self._shared: dict[str, Tensor] | None = None
        if self.size > 1:  # what was drawn so far (network init) was the same on every rank
            self._shared = self._capture()
            self.reseed_local(0)

    # ------------------------------------------------------------------ random streams
    def _devices(self) -> list[torch.device]:
        return [self.device] if self.device.type == "cuda" else []

    def _capture(self) -> dict[str, Tensor]:
        state = {"cpu": torch.get_rng_state()}
        if self.device.type == "cuda":
            state["cuda"] = torch.cuda.get_rng_state(self.device)
        return state

    def reseed_local(self, step: int) -> None:
        """The per-rank stream: a function of (seed, rank, step) so a resume is reproducible."""
        torch.manual_seed((self.seed * 1_000_003 + (self.rank + 1) * 104_729 + step * 7_919) % 2 ** 63)

    def shared_state(self) -> Tensor:
        """The shared CPU stream (what a checkpoint stores as ``rng.torch``)."""
        return self._shared["cpu"] if self._shared is not None else torch.get_rng_state()

    def load_shared_state(self, cpu: Tensor, cuda: Tensor | None, step: int) -> None:
        if self._shared is None:
            torch.set_rng_state(cpu)
            if cuda is not None and self.device.type == "cuda":
                torch.cuda.set_rng_state(cuda, self.device)
            return
        self._shared = {"cpu": cpu.clone()}
        if cuda is not None and self.device.type == "cuda":
            self._shared["cuda"] = cuda.clone()
        self.reseed_local(step)

    @contextlib.contextmanager
    def shared_rng(self) -> Iterator[None]:
        """Draw from the stream every rank shares (a no-op for a single process)."""
        if self._shared is None:
            yield
            return
        with torch.random.fork_rng(devices=self._devices()):
            torch.set_rng_state(self._shared["cpu"])
            if "cuda" in self._shared:
                torch.cuda.set_rng_state(self._shared["cuda"], self.device)
            yield
            self._shared = self._capture()

    def share(self, n: int) -> slice:
        return share_slice(n, self.rank, self.size)

    def draw(self, fn, n: int) -> Tensor:
        """``fn(n)`` drawn on the shared stream; this rank's contiguous share of it."""
        if self.size == 1:
            return fn(n)
        with self.shared_rng():
            full = fn(n)
        return full[self.share(n)]

    def draw_paired(self, fn, n: int, *, step: int, stream: int) -> Tensor:
        """``fn(n)`` drawn from a stream of its own, a pure function of (run seed, step,
        ``stream``); this rank's contiguous share of it.

        The trainer draws each step's latents and fake labels this way, so two runs of one seed
        draw the same ones whatever else their methods draw (a search's noise, a penalty's
        interpolation): the pairing a sweep's per-seed comparison relies on. Every rank draws the
        same global batch, and a resumed run the same latents as the uninterrupted one."""
        key = (self.seed * 1_000_003 + step * 7_919 + stream * 104_729 + 0x5EED) % 2 ** 63
        # what torch.random.fork_rng(devices=[device]) saves and restores, without its per-call
        # bookkeeping (half of a draw's cost on the CPU); only the generators this draw uses are
        # seeded: torch.manual_seed would also queue lazy seeds for every uninitialised
        # accelerator backend, recording a stack trace each time (about 0.3 ms a draw)
        cpu, cuda = torch.default_generator, self.device.type == "cuda"
        saved = cpu.get_state()
        saved_cuda = torch.cuda.get_rng_state(self.device) if cuda else None
        try:
            cpu.manual_seed(key)
            if cuda:
                torch.cuda.manual_seed(key)  # the current device; CUDA is initialised here
            full = fn(n)
        finally:
            cpu.set_state(saved)
            if cuda:
                torch.cuda.set_rng_state(saved_cuda, self.device)
        return full if self.size == 1 else full[self.share(n)]

    # ------------------------------------------------------------------ collectives
    def average_gradients(self, params: Iterable[nn.Parameter], finite: bool, *,
                          weight: float) -> bool:
        """Average ``.grad`` over ranks (each rank's gradient weighted by ``weight``, its share of
        the global batch); returns whether every rank's losses were finite.

        One all-reduce carries every gradient, a has-gradient mask (a parameter no rank gave a
        gradient keeps ``.grad = None``, as the optimisers expect) and the non-finite count."""
        if self.size == 1:
            return finite
        params = list(params)
        parts = [(p.grad.detach().float().reshape(-1) * weight) if p.grad is not None
                 else torch.zeros(p.numel(), device=p.device) for p in params]
        mask = torch.tensor([float(p.grad is not None) for p in params] + [float(not finite)],
                            device=self.device)
        flat = torch.cat([*parts, mask]) if parts else mask
        dist.all_reduce(flat)
        offset = sum(p.numel() for p in params)
        counts = flat[offset:offset + len(params)]
        offset = 0
        for i, p in enumerate(params):
            n = p.numel()
            if counts[i] > 0:
                g = flat[offset:offset + n].view_as(p).to(p.dtype)
                if p.grad is None:
                    p.grad = g.clone()
                else:
                    p.grad.copy_(g)
            offset += n
        return bool(flat[-1] == 0)

    def agree(self, value: int) -> bool:
        """Whether every rank holds the same integer (e.g. the step it resumed from)."""
        if self.size == 1:
            return True
        t = torch.tensor([value, -value], dtype=torch.float64, device=self.device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return int(t[0]) == value and int(-t[1]) == value

    def any(self, flag: bool) -> bool:
        """Whether any rank holds ``flag`` (a stop signal seen by one rank stops all at one step)."""
        if self.size == 1:
            return flag
        t = torch.tensor([float(flag)], device=self.device)
        dist.all_reduce(t)
        return bool(t[0] > 0)

    def mean_over_ranks(self, values: dict[str, float]) -> dict[str, float]:
        """Logged means over the global batch (every rank holds the same keys)."""
        if self.size == 1 or not values:
            return values
        keys = sorted(values)
        t = torch.tensor([values[k] for k in keys], dtype=torch.float64, device=self.device)
        dist.all_reduce(t)
        return {k: float(v) / self.size for k, v in zip(keys, t.tolist())}

    def gather_rows(self, local: Tensor, pieces: list[list[int]]) -> Tensor:
        """Reassemble rows that ranks produced in pieces: ``pieces[b][r]`` rows of batch ``b`` came
        from rank ``r``; the result lists batch 0's rows rank by rank, then batch 1's, ..."""
        if self.size == 1:
            return local
        totals = [sum(p[r] for p in pieces) for r in range(self.size)]
        longest = max(totals)
        pad = torch.zeros((longest - len(local), *local.shape[1:]), dtype=local.dtype,
                          device=local.device)
        mine = torch.cat([local, pad]).contiguous()
        bufs = [torch.empty_like(mine) for _ in range(self.size)]
        dist.all_gather(bufs, mine)
        starts = [0] * self.size
        out = []
        for batch in pieces:
            for r, k in enumerate(batch):
                out.append(bufs[r][starts[r]:starts[r] + k])
                starts[r] += k
        return torch.cat(out)


def convert_sync_batchnorm(module: nn.Module, device: torch.device) -> nn.Module:
    """``train.sync_batchnorm``: BatchNorm statistics over the global batch (CUDA only in PyTorch)."""
    if device.type != "cuda":
        raise SpecError("SyncBatchNorm runs on CUDA devices only (a PyTorch limit)",
                        where="train.sync_batchnorm",
                        fix="set train.sync_batchnorm = false on CPU: BatchNorm then normalises "
                            "each rank's share of the batch separately.")
    return nn.SyncBatchNorm.convert_sync_batchnorm(module)
