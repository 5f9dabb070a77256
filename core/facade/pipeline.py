"""Pipeline: a built stack you can train, sample, save, load and evaluate.

    from gantk import Pipeline
    pipe = Pipeline.from_spec("examples/stacks/ring.toml")   # a path, a dict or a StackSpec
    pipe.train(steps=2000)                                      # 2000 more G updates
    x = pipe.sample(64, with_=["advlat_z"])
    pipe.save("runs/ring"); pipe = Pipeline.load("runs/ring")
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ..base.errors import NONFINITE_FIX, CheckpointError, GantkError, SpecError, TrainingError
from ..base.interfaces import Component, StepContext
from ..base.safeio import trim
from ..stack import build as _build
from ..stack.plugins import PluginManager, get_plugin_manager
from ..stack.spec import BOOKKEEPING, StackSpec, parse_spec
from ..store.checkpoint import Checkpoint, check_finite, save_checkpoint
from ..store.provenance import install_hint
from ..store.provenance import record as provenance_record
from ..store.rundirs import open_checkpoint, spec_diff
from ..store.runlock import run_lock
from ..train import distributed
from ..train import ema as _ema
from ..train.trainer import Trainer
from .loop import train_steps
from .sampler import Sampling
from .setup import check_size, current_form, resolve_device, run_dir_of, scale_out, warn
from .writer import RunWriter


class Pipeline(Sampling):
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
        check_size(self.resolved)
        torch.manual_seed(self.spec.seed)  # network initialisation is part of the seeded run
        self.backbone = _build.build_backbone(self.resolved).to(self.device)
        self.loss = _build.build_loss(self.resolved)
        self.components: list[Component] = _build.build_components(
            self.resolved, self.backbone, self.loss, self.device)
        scale_out(self)
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
        ckpt = open_checkpoint(Path(path), step=step, warn=warn)
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
        """The trainer (built on first use: its optimisers, the one step order)."""
        if self._trainer is None:
            self._trainer = Trainer(self)
        return self._trainer

    @property
    def trainer_built(self) -> bool:
        """Whether this pipeline has built its trainer (it trained, or loaded optimiser state);
        a component that must not refit mid-training asks this rather than building one."""
        return self._trainer is not None

    def step_context(self, phase: str = "g", *, real: Tensor | None = None,
                     real_y: Tensor | None = None, step: int | None = None,
                     stream: int | None = None) -> StepContext:
        """A step context exactly as the trainer builds it for ``phase`` (``d``, ``g``, ``aux``)
        at ``step`` (default: the next one): that step's paired latents, the stack's latent
        transforms applied as the step applies them. What a plugin's test or a tool hands to
        ``d_terms``/``g_terms`` to see the terms a step would compute
        (:meth:`gantk.train.trainer.Trainer.context`). ``stream`` defaults to the phase's own in
        the step: the first D update's, the G update's, the first aux update's."""
        if stream is None:
            n_critic = self.spec.train.n_critic
            stream = {"d": 0, "g": n_critic}.get(phase, n_critic + 1)
        return self.trainer.context(phase, self.step + 1 if step is None else step, real,
                                    real_y, stream=stream)

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
        stored = current_form(ckpt.spec, self.registry)
        mine = self.spec.to_dict()
        for key in ("backbone", "loss", "methods", "data"):
            if spec_diff(stored.get(key), mine.get(key), prefix=key, ignore=BOOKKEEPING):
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
        from ..datasets.streaming import ImageFiles, to_float

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
        from ..datasets.sources import BatchStream
        from ..datasets.streaming import LoaderStream

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
        train.* settings (docs/reliability.md). Training sets torch's CPU threads
        (``train.threads``, else ``OMP_NUM_THREADS``, else the free physical cores:
        :mod:`gantk.facade.threads`). ``progress``: a bar on stderr when it is a terminal (and
        with a run directory one line per logged step elsewhere); False: silent."""
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
            logs = train_steps(self, target, writer=writer, progress=progress)
        bad = check_finite(self.modules())
        if bad:
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
                warn(f"train.loggers lists {name!r} but this run has no run directory; loggers "
                      "write into RUN_DIR, so nothing is logged (pass out=...)")

    # ------------------------------------------------------------------ sampling

    def save(self, path: str | Path) -> Path:
        """Write a run directory: the resolved spec and a checkpoint of the current state."""
        writer = RunWriter(self, Path(path))
        writer.write_spec()
        return writer.checkpoint()

    def evaluate(self, metrics: list[str] | None = None, *, n: int | None = None,
                 with_: list[Any] | None = None, **kwargs: Any) -> dict[str, Any]:
        """Score samples against the data (see docs/metrics.md)."""
        from ..metrics.evaluate import evaluate

        return evaluate(self, metrics=metrics, n=n, with_=with_, **kwargs)

    def __repr__(self) -> str:
        return f"Pipeline({self.spec.shorthand}, step={self.step}, device={self.device})"
