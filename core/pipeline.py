"""Pipeline: a built stack you can train, sample, save, load and evaluate.

    from gantk import Pipeline
    pipe = Pipeline.from_spec("examples/stacks/ring.toml")   # a path, a dict or a StackSpec
    pipe.train(steps=2000)                                      # 2000 more G updates
    x = pipe.sample(64, with_=["advlat_z"])
    pipe.save("runs/ring"); pipe = Pipeline.load("runs/ring")
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from . import build as _build
from . import distributed
from . import ema as _ema
from .checkpoint import Checkpoint, save_checkpoint
from .errors import CheckpointError, GantkError, SpecError
from .interfaces import Component, LatentTransform, StepContext
from .plugins import PluginManager, get_plugin_manager
from .provenance import install_hint
from .provenance import record as provenance_record
from .runlock import run_lock
from .spec import ComponentSpec, StackSpec, parse_spec
from .trainer import Trainer, apply_transforms


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


def _check_size(resolved: Any) -> None:
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
    from .runs import same_stack, stored_stack
    from .safeio import is_dir

    if is_dir(given):
        return given
    run = ckpt.path.parent.parent
    if ckpt.path.parent.name != "checkpoints":
        return None
    reference = stored_stack(run)
    if reference is None:
        return None
    if not same_stack(reference, ckpt.spec):
        _warn(f"{ckpt.path} holds another stack than the run {run} it sits in; nothing is "
              "written into that run")
        return None
    return run


def _warn(text: str) -> None:
    from rich.console import Console
    from rich.text import Text

    Console(stderr=True).print(Text.assemble(("warning: ", "yellow"), text), highlight=False)


def _scale_out(pipe: Pipeline) -> None:
    """The scale-out options that change the built networks: SyncBatchNorm, channels-last, compile."""
    from . import precision

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


def _current_form(stored: dict[str, Any], registry: Any) -> dict[str, Any]:
    """A checkpoint's stored spec as this code resolves it, so that an option a plugin added
    since the checkpoint was saved compares equal at its default (the stored spec lists every
    option of its day). A spec this code cannot resolve is compared as stored."""
    try:
        return _build.resolve(parse_spec(stored), registry).spec.to_dict()
    except GantkError:
        return stored


class Pipeline:
    """A validated, built stack. Construct with :meth:`from_spec` or :meth:`load`."""

    def __init__(self, spec: StackSpec, *, manager: PluginManager | None = None,
                 device: str | None = None) -> None:
        self.manager = manager or get_plugin_manager()
        self.registry = self.manager.registry
        self.resolved = _build.resolve(spec, self.registry)
        _build.check_static(self.resolved)
        self.spec: StackSpec = self.resolved.spec
        self.data_info = self.resolved.data_info
        self.device = distributed.init_from_env(resolve_device(device or self.spec.train.device))
        _check_size(self.resolved)
        torch.manual_seed(self.spec.seed)  # network initialisation is part of the seeded run
        self.backbone = _build.build_backbone(self.resolved).to(self.device)
        self.loss = _build.build_loss(self.resolved)
        self.components: list[Component] = _build.build_components(
            self.resolved, self.backbone, self.loss, self.device)
        _scale_out(self)
        self.ema = _ema.make(self.backbone.generator) if _ema.enabled(self.spec.train) else None
        self.world = distributed.World(self.device, self.spec.seed)  # after every random init
        self.step = 0
        self.run_dir: Path | None = None
        self._data: tuple[Tensor, Tensor | None] | None = None
        self._trainer: Trainer | None = None
        self._stream = None
        for comp in self.components:
            comp.on_attach(self)
        self.manager.hook.gantk_on_build(pipeline=self)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_spec(cls, source: str | Path | dict[str, Any] | StackSpec,
                  overrides: list[str] | None = None, *, device: str | None = None,
                  manager: PluginManager | None = None) -> Pipeline:
        return cls(parse_spec(source, overrides), manager=manager, device=device)

    @classmethod
    def load(cls, path: str | Path, *, device: str | None = None, step: int | None = None,
             manager: PluginManager | None = None) -> Pipeline:
        """Load a run directory (its latest intact checkpoint, or ``step``) or one checkpoint file."""
        from .runs import open_checkpoint
        from .safeio import trim

        ckpt = open_checkpoint(Path(path), step=step, warn=_warn)
        stored = ckpt.spec  # a JSON object (Checkpoint refuses anything else): data, never a path
        if isinstance(stored.get("data"), dict) and stored["data"].get("download"):
            # a file on disk may not make gantk reach the network or write outside the run
            stored = {**stored, "data": {**stored["data"], "download": False}}
        registry = (manager or get_plugin_manager()).registry
        hint = install_hint(stored, ckpt.provenance, ckpt.plugins,
                            set(registry.entries) | set(registry.aliases))
        if hint:
            raise CheckpointError(f"the run was trained with components this installation lacks: "
                                  f"{hint}", where=str(ckpt.path),
                                  fix="install the package(s) named (`gantk list-plugins` shows "
                                      "what is installed, and broken plugins with their error).")
        try:
            spec = parse_spec(stored)
        except SpecError as exc:
            raise CheckpointError(f"the stack stored in the checkpoint no longer validates: "
                                  f"{exc.paragraph()}", where=str(ckpt.path),
                                  fix="install the plugins (and versions) it was trained with: "
                                      f"{trim(ckpt.plugins, 300)}.") from None
        pipe = cls(spec, manager=manager, device=device)
        pipe.load_checkpoint(ckpt, optimizers=False)
        pipe.run_dir = run_dir_of(Path(path), ckpt)
        return pipe

    # ------------------------------------------------------------------ state
    def modules(self) -> dict[str, torch.nn.Module]:
        mods: dict[str, torch.nn.Module] = {"backbone": self.backbone}
        if self.ema is not None:
            mods["ema"] = self.ema
        for i, comp in enumerate(self.components):
            mods[f"components.{i}.{comp.entry_name}"] = comp
        return mods

    def _parts(self) -> list[Any]:
        return [self.resolved.data, self.resolved.backbone, self.resolved.loss, *self.resolved.methods]

    def plugin_versions(self) -> dict[str, str]:
        return {p.entry.distribution or p.entry.plugin: p.entry.version for p in self._parts()}

    @property
    def trainer(self) -> Trainer:
        if self._trainer is None:
            self._trainer = Trainer(self)
        return self._trainer

    def rng_state(self) -> dict[str, Tensor]:
        state = {"torch": self.world.shared_state()}
        if self.device.type == "cuda":
            state["cuda"] = torch.cuda.get_rng_state(self.device)
        stream = self.stream.state_dict() if self._stream is not None else {}
        state.update({f"data.{k}": v for k, v in stream.items()})
        return state

    def save_checkpoint(self, path: str | Path, *, extra: dict[str, Any] | None = None) -> Path:
        optimizers = self._trainer.optimizers if self._trainer is not None else {}
        return save_checkpoint(path, modules=self.modules(), optimizers=optimizers,
                               rng=self.rng_state(), step=self.step, spec_json=self.spec.to_json(),
                               plugins=self.plugin_versions(), extra=extra,
                               provenance=provenance_record(self._parts()))

    def load_checkpoint(self, ckpt: Checkpoint | str | Path, *, optimizers: bool = True,
                        fork: bool = False) -> None:
        """Load weights (and with ``optimizers`` the optimiser, RNG and data-order state).

        Everything is checked before anything is changed. With ``fork`` this stack's train.*
        settings win over the stored optimiser hyper-parameters (learning rates, betas, weight
        decay); a different optimiser type starts with fresh optimiser state, and an EMA the
        checkpoint lacks starts as a copy of the loaded G."""
        ckpt = ckpt if isinstance(ckpt, Checkpoint) else Checkpoint(ckpt)
        stored = _current_form(ckpt.spec, self.registry)
        mine = self.spec.to_dict()
        for key in ("backbone", "loss", "methods", "data"):
            if stored.get(key) != mine.get(key):
                raise CheckpointError(
                    f"the checkpoint was trained with a different {key} ({stored.get(key)!r}) than "
                    f"this stack ({mine.get(key)!r})", where=str(ckpt.path),
                    fix="use Pipeline.load(path) to rebuild the stack from the checkpoint, or "
                        "train into a new run directory.")
        stored_train = stored.get("train")
        same_optim = isinstance(stored_train, dict) and \
            stored_train.get("optimizer") == self.spec.train.optimizer
        if optimizers:
            ckpt.check_rng()
            for name, opt in self.trainer.optimizers.items():
                if same_optim or not fork:
                    ckpt.check_optimizer(name, opt)
        fresh_ema = fork and self.ema is not None and not ckpt.module_state("ema")
        for name, module in self.modules().items():
            if not (name == "ema" and fresh_ema):
                ckpt.load_module(name, module)
        if fresh_ema:  # a fork that turns the EMA on: it starts as a copy of the loaded G
            self.ema.load_state_dict(self.backbone.generator.state_dict())
        self.step = ckpt.step
        if optimizers:
            for name, opt in self.trainer.optimizers.items():
                if fork and not same_optim:
                    continue
                fresh = [{k: v for k, v in g.items() if k != "params"} for g in opt.param_groups]
                ckpt.load_optimizer(name, opt)
                if fork:
                    for group, settings in zip(opt.param_groups, fresh, strict=True):
                        group.update(settings)
            rng = ckpt.rng("torch")
            if rng is not None:
                self.world.load_shared_state(rng, ckpt.rng("cuda"), ckpt.step)
            data_state = {k[len("rng.data."):]: v for k, v in ckpt.tensors.items()
                          if k.startswith("rng.data.")}
            if data_state:
                self.stream.load_state_dict(data_state)

    # ------------------------------------------------------------------ data
    def real_data(self) -> tuple[Tensor, Tensor | None]:
        """The whole data set in memory: images in [-1, 1] (N, C, H, W), or points (N, 2).

        Streamed sets (uint8 or files on disk) are converted on each call, not kept as float."""
        from .streaming import ImageFiles, to_float

        x, y = self._raw_data()
        return to_float(x.load_all() if isinstance(x, ImageFiles) else x), y

    def _raw_data(self) -> tuple[Any, Tensor | None]:
        if self._data is None:
            part = self.resolved.data
            x, y = part.entry.factory(part.params)
            if tuple(x.shape[1:]) != tuple(self.data_info.shape):
                raise GantkError(f"data set {part.entry.name!r} delivered samples of shape "
                                 f"{tuple(x.shape[1:])}, its info promised {self.data_info.shape}",
                                 where="data", fix=f"report this to {part.entry.plugin!r}.")
            self._data = (x, y)
        return self._data

    @property
    def stream(self):
        from .data import BatchStream
        from .streaming import LoaderStream

        if self._stream is None:
            x, y = self._raw_data()
            train = self.spec.train
            if train.batch_size < self.world.size:
                raise SpecError(f"train.batch_size ({train.batch_size}) is the global batch and "
                                f"must give each of the {self.world.size} processes a sample",
                                where="train.batch_size",
                                fix=f"set train.batch_size >= {self.world.size}.")
            common = dict(batch_size=train.batch_size, seed=self.spec.seed, device=self.device,
                          part=self.world.share(train.batch_size))
            if x.dtype == torch.uint8:
                self._stream = LoaderStream(x, y, workers=train.workers, xflip=train.xflip,
                                            channels_last=train.channels_last, **common)
            elif train.xflip:
                raise SpecError(f"train.xflip applies to image folders and torchvision sets, not "
                                f"to {self.spec.data.name!r}", where="train.xflip",
                                fix="set train.xflip = false for this data set.")
            else:
                self._stream = BatchStream(x, y, **common)
        return self._stream

    # ------------------------------------------------------------------ training
    def train(self, steps: int | None = None, *, out: str | Path | None = None,
              progress: bool = True, fork_from: str | Path | None = None) -> dict[str, float]:
        """Train ``steps`` more G updates (default: up to ``spec.train.steps`` in total).

        With ``out`` (or a run directory this pipeline was loaded from) the run writes metrics,
        samples and checkpoints there; an existing run in ``out`` is resumed. ``fork_from`` (a
        run directory or checkpoint) starts ``out`` from that checkpoint with this stack's
        train.* settings (docs/reliability.md)."""
        from .checkpoint import NONFINITE_FIX, check_finite
        from .runs import RunWriter

        if out is not None:
            self.run_dir = Path(out)
        if fork_from is not None and self.run_dir is None:
            raise GantkError("fork_from needs a run directory to write to", where="fork_from",
                             fix="pass out=NEW_RUN_DIR.")
        self._check_loggers()
        target = self.spec.train.steps if steps is None else self.step + steps
        writer = RunWriter(self, self.run_dir) if self.run_dir is not None else None
        with run_lock(self.run_dir) if writer is not None else contextlib.nullcontext():
            if writer is not None:
                writer.prepare(fork_from=fork_from)
            logs = writer.loop(target, progress=progress) if writer else self._loop(target)
        bad = check_finite(self.modules())
        if bad:
            from .errors import TrainingError

            raise TrainingError(f"training ended at step {self.step} with non-finite weights "
                                f"({', '.join(bad[:5])})", where=str(self.run_dir or "pipeline"),
                                fix=NONFINITE_FIX)
        for comp in self.components:
            comp.on_train_end(self)
        self.manager.hook.gantk_on_train_end(pipeline=self, run_dir=self.run_dir)
        return logs

    def _check_loggers(self) -> None:
        """Every ``train.loggers`` entry's optional library is importable (before any step)."""
        import importlib.util

        for i, name in enumerate(self.spec.train.loggers):
            entry = self.registry.get(name, "logger", where=f"train.loggers[{i}]")
            lib = entry.extra.get("requires")
            if lib and importlib.util.find_spec(lib) is None:
                raise SpecError(f"the {name!r} logger needs the {lib!r} package, which is not "
                                "installed", where=f"train.loggers[{i}]",
                                fix=f"pip install {lib}, or remove {name!r} from train.loggers.")
            if self.run_dir is None:
                _warn(f"train.loggers lists {name!r} but this run has no run directory; loggers "
                      "write into RUN_DIR, so nothing is logged (pass out=...)")

    def _loop(self, target: int) -> dict[str, float]:
        logs: dict[str, Tensor] = {}
        self.backbone.train()
        while self.step < target:
            logs = self.trainer.step(self.step + 1, self.stream)
            self.step += 1
            self.manager.hook.gantk_on_step_end(pipeline=self, step=self.step, logs={})
        return {k: float(v) for k, v in logs.items()}

    # ------------------------------------------------------------------ sampling
    def _extra_components(self, with_: list[Any] | None) -> list[Component]:
        extra: list[Component] = []
        have = {c.entry_name for c in self.components}
        for i, item in enumerate(with_ or []):
            comp_spec = ComponentSpec(name=item) if isinstance(item, str) else ComponentSpec(**item)
            for name in self.registry.expand(comp_spec.name):
                if name in have:
                    continue
                where = f"with[{i}]"
                entry = self.registry.get(name, ("latent_transform", "method"), where=f"{where}.name")
                part = _build.Part(entry, entry.make_params(comp_spec.options, where=where), where)
                ctx = _build.build_context(self.resolved, self.backbone, self.loss, name)
                for comp in _build.build_part(part, ctx):
                    comp.to(self.device)
                    comp.on_attach(self)
                    extra.append(comp)
        return extra

    def sample_transforms(self, with_: list[Any] | None = None) -> list[dict[str, Any]]:
        """The latent transforms active at sampling, the stack's own (``from: "stack"``) and the
        ``with_`` ones (``from: "with"``), as ``{"name", **options, "from"}`` records: what an
        evaluation row stores under ``with``. Nothing is built."""
        out: list[dict[str, Any]] = []
        for comp, part in zip(self.components, self._component_parts()):
            if isinstance(comp, LatentTransform) and "sample" in comp.phases:
                out.append({"name": comp.entry_name, **part, "from": "stack"})
        have = {r["name"] for r in out} | {c.entry_name for c in self.components}
        for item in with_ or []:
            spec = ComponentSpec(name=item) if isinstance(item, str) else ComponentSpec(**item)
            for name in self.registry.expand(spec.name):
                if name not in have:
                    out.append({"name": name, **spec.options, "from": "with"})
                    have.add(name)
        return out

    def _component_parts(self) -> list[dict[str, Any]]:
        by_name = {p.entry.name: p.options for p in self.resolved.methods}
        return [dict(by_name.get(c.entry_name, {})) for c in self.components]

    @contextlib.contextmanager
    def _eval_mode(self) -> Iterator[None]:
        was = self.backbone.training
        self.backbone.eval()
        try:
            yield
        finally:
            self.backbone.train(was)

    def sample_batches(self, n: int, *, batch_size: int = 500, with_: list[Any] | None = None,
                       y: Tensor | None = None, return_latents: bool = False, split: bool = False,
                       truncation: float | None = None, seeds: list[int] | None = None,
                       ) -> Iterator[Tensor | tuple[Tensor, Tensor, Tensor | None]]:
        """Generate ``n`` samples in batches (bounded memory); uses the EMA G when there is one.

        ``split`` (under torchrun): every rank draws the same latents, keeps its share of each
        batch (``distributed.share_sizes``) and generates only that. ``truncation`` and ``seeds``
        follow :mod:`gantk.sampling`: with ``seeds`` each image is drawn alone from its seed
        (``n`` is ``len(seeds)``, one image per batch)."""
        from . import sampling

        psi = sampling.check_truncation(self.backbone, truncation)
        transforms = [c for c in self.components + self._extra_components(with_)
                      if isinstance(c, LatentTransform)]
        G = self.ema if self.ema is not None else self.backbone.generator
        if seeds is not None:
            n, batch_size = len(seeds), 1
        done = 0
        with self._eval_mode():
            while done < n:
                b = min(batch_size, n - done)
                with (sampling.seeded(seeds[done], self.device) if seeds is not None
                      else contextlib.nullcontext()):
                    out = self._sample_one_batch(G, transforms, b, None if y is None else
                                                 y[done:done + b], psi, split=split)
                done += b
                yield out if return_latents else out[0]

    def _sample_one_batch(self, G: torch.nn.Module, transforms: list[LatentTransform], b: int,
                          y: Tensor | None, psi: float | None, *, split: bool = False,
                          ) -> tuple[Tensor, Tensor, Tensor | None]:
        bb = self.backbone
        z = bb.sample_latent(b, device=self.device)
        if psi is not None and bb.truncation == "latent":
            from .sampling import truncate_prior

            z = truncate_prior(z, bb.prior, psi)
        yb = None
        if bb.num_classes:
            yb = (y.to(self.device) if y is not None else
                  torch.randint(bb.num_classes, (b,), device=self.device))
        if split:
            part = self.world.share(b)
            z, yb = z[part], (yb[part] if yb is not None else None)
        ctx = StepContext(phase="sample", backbone=bb, loss=self.loss, step=self.step, z=z, y=yb,
                          generator=G)
        with torch.no_grad():
            z_in = apply_transforms(transforms, z, ctx)
            if psi is not None and bb.truncation == "mapping":
                x = bb.generate_truncated(G, z_in, yb, psi)
            else:
                x = G(z_in, yb)
        return x, z_in, yb

    def sample(self, n: int = 64, *, with_: list[Any] | None = None, y: Tensor | None = None,
               batch_size: int = 500, return_latents: bool = False,
               truncation: float | None = None, seeds: list[int] | str | None = None):
        """``n`` samples (on CPU). ``with_`` adds post-training transforms, e.g. ``["advlat_z"]``
        or ``[{"name": "advlat_z", "steps": 50}]``. ``truncation`` (psi) narrows the latents (see
        :mod:`gantk.sampling`: StyleGAN2's ``w_avg`` lerp, the truncated prior elsewhere; 1 or
        None: off). ``seeds`` (a list or ``"0-63"``) draws one image per seed, the same image for
        the same seed in any list or run; ``n`` is then ignored."""
        if seeds is not None:
            from .sampling import parse_seeds

            seeds = parse_seeds(seeds, where="seeds")
            n = len(seeds)
        parts = list(self.sample_batches(n, batch_size=batch_size, with_=with_, y=y,
                                         return_latents=return_latents, truncation=truncation,
                                         seeds=seeds))
        if return_latents:
            x = torch.cat([p[0] for p in parts]).cpu()
            z = torch.cat([p[1] for p in parts]).cpu()
            ys = [p[2] for p in parts if p[2] is not None]
            out = (x, z, torch.cat(ys).cpu() if ys else None)
        else:
            out = torch.cat(parts).cpu()
        self.manager.hook.gantk_on_sample(pipeline=self, samples=out[0] if return_latents else out)
        return out

    def interpolate(self, seeds: list[int] | str, steps: int = 8, *, mode: str = "lerp",
                    space: str = "auto", truncation: float | None = None,
                    cls: int | None = None) -> Tensor:
        """Frames along the path through the seeds' latents (see
        :func:`gantk.sampling.interpolate_seeds`): ``lerp``/``slerp``, in z or StyleGAN2's W."""
        from .sampling import interpolate_seeds, parse_seeds

        return interpolate_seeds(self, parse_seeds(seeds, where="seeds"), steps, mode=mode,
                                 space=space, truncation=truncation, cls=cls)

    def save_picture(self, x: Tensor, path: str | Path, *, title: str = "") -> Path:
        """Samples as a PNG: an image grid, or for 2-D data a scatter plot over the real modes."""
        from .viz import save_samples

        real = self.real_data()[0][:5000] if self.data_info.kind == "points" else None
        return save_samples(x, path, info=self.data_info, real=real, title=title)

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | Path) -> Path:
        """Write a run directory: the resolved spec and a checkpoint of the current state."""
        from .runs import RunWriter

        writer = RunWriter(self, Path(path))
        writer.write_spec()
        return writer.checkpoint()

    def evaluate(self, metrics: list[str] | None = None, *, n: int | None = None,
                 with_: list[Any] | None = None, **kwargs: Any) -> dict[str, Any]:
        """Score samples against the data (see docs/metrics.md)."""
        from .evaluate import evaluate

        return evaluate(self, metrics=metrics, n=n, with_=with_, **kwargs)

    def __repr__(self) -> str:
        return f"Pipeline({self.spec.shorthand}, step={self.step}, device={self.device})"
