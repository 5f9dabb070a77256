"""Score a pipeline's samples against its data: ``evaluate(pipe, ["fid", "prdc"], n=10000)``.

The flow is the same for every metric, so all of them score exactly the same samples:

1. pick the feature nets the requested metrics need (:mod:`gantk.metrics.features`): raw
   coordinates for 2-D points; Inception-v3 when its weights are on disk; the shipped digits
   classifier on digits otherwise; the digits classifier's labels for digit mode counts;
2. run them over the real data (a seeded random subset of at most ``n``) and over ``n`` generated
   samples, batch by batch: only features are kept, never images, so memory grows with
   ``n x feature_dim`` whatever the image size;
3. hand the two :class:`~gantk.metrics.base.FeatureSet` to each metric object (from the registry,
   so plugin metrics work the same way) and merge their outputs.

The result also names the spaces used (``feature_space``, ``is_space``, ``modes_space``) so numbers
computed in different spaces cannot be mistaken for each other.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..base.errors import SpecError
from ..base.safeio import append_jsonl
from .base import FeatureSet, MetricError
from .features import (DigitsFeatures, FeatureNet, classifier_family, digits_data,
                       select_feature_net)
from .heartbeat import Heartbeat
from .scores import (NOT_SCORES, default_registry, directions, metric_direction,
                     resolve_metric_names, score_keys)

# Kept importable from here, where they were before ``scores`` (``gantk.evaluate.metric_direction``).
__all__ = ["BUILTIN_METRICS", "NOT_SCORES", "default_metrics", "default_sample_count", "directions",
           "evaluate", "extract", "metric_direction", "record_eval", "reference_data",
           "resolve_metric_names", "score_keys"]

BUILTIN_METRICS = ("fid", "kid", "is", "prdc", "jsd", "modes")


def default_metrics(data_info: Any, data_name: str | None = None, *,
                    inception: str | None = None) -> list[str]:
    """The metrics that make sense for this data with the nets available here.

    Points: ``modes`` (when the data set has mode centres) and ``prdc`` on raw coordinates.
    Digits, mnist5k, stacked_mnist5k, mnist: ``fid, kid, prdc, jsd, is, modes`` (Inception
    features when their weights are named, else the shipped classifier that fits the data). Other
    images: ``fid, kid, prdc, is`` on Inception (its weights fetched and verified on first use)."""

    if data_info.kind == "points":
        return (["modes"] if data_info.modes is not None else []) + ["prdc"]
    if digits_data(data_name, data_info):
        return ["fid", "kid", "prdc", "jsd", "is", "modes"]
    return ["fid", "kid", "prdc", "is"]


# ---------------------------------------------------------------------------- features


def _batches(x: torch.Tensor, batch_size: int) -> Iterator[torch.Tensor]:
    for i in range(0, len(x), batch_size):
        yield x[i:i + batch_size]


def extract(batches: Iterable[torch.Tensor], nets: dict[str, FeatureNet]) -> FeatureSet:
    """Run each net over the batches for the inputs it is assigned; keep only the features."""

    parts: dict[str, list[np.ndarray]] = {key: [] for key in nets}
    for batch in batches:
        for net in {id(n): n for n in nets.values()}.values():
            wanted = {k for k, n in nets.items() if n is net}
            for key, arr in net(batch, wanted).items():
                parts[key].append(arr)
    arrays = {k: np.concatenate(v) if v else None for k, v in parts.items()}
    emb_net = nets.get("embedding")
    probs_net = nets.get("probs")
    return FeatureSet(**arrays, space=emb_net.space if emb_net else "",
                      probs_space=probs_net.probs_space if probs_net else "")


def _assign_nets(needs: set[str], info: Any, data_name: str | None, *, feature_net: str,
                 inception: str | None, device: Any) -> tuple[dict[str, FeatureNet], str | None]:
    nets: dict[str, FeatureNet] = {}
    note = None
    if needs & {"embedding", "probs", "raw"}:
        main, note = select_feature_net(info, data_name, feature_net=feature_net,
                                        inception=inception, device=device)
        for key in needs & {"embedding", "probs", "raw"}:
            if key not in main.provides:
                what = {"probs": "class probabilities (the Inception Score needs a classifier)",
                        "raw": "raw 2-D points", "embedding": "an embedding"}[key]
                raise MetricError(f"the {main.space or type(main).__name__} feature net gives no "
                                  f"{what} for {data_name!r} data", where="metrics",
                                  fix="drop the metric for this data (see docs/metrics.md for "
                                      "which metric fits which data).")
            nets[key] = main
    if "digit_probs" in needs:
        family = classifier_family(data_name, info)
        if family is None:
            raise MetricError(f"mode counts of images use a shipped digit classifier, which does "
                              f"not fit {data_name!r} data", where="metrics",
                              fix="drop 'modes' for this data; it applies to ring, grid, digits, "
                                  "mnist5k and stacked_mnist5k.")
        main = nets.get("embedding") or nets.get("probs")
        nets["digit_probs"] = main if (isinstance(main, DigitsFeatures)
                                       and main.family == family) else \
            DigitsFeatures(int(info.shape[0]), device, family)
    return nets, note


def prepare_evaluation(info: Any, data_name: str | None, metrics: list[str] | None = None, *,
                       feature_net: str = "auto", inception: str | None = None) -> Any:
    """Fetch (and verify) what an evaluation of this data will need before it is due: the
    Inception weights when the chosen metrics read Inception features. Returns their path, or
    None when no Inception is needed; a MetricError (offline without the file) otherwise. For a
    training run with ``eval_every``, so it stops before its first step, not at its first
    evaluation."""

    from .features import uses_inception
    from .inception import inception_weights

    registry = default_registry()
    names = resolve_metric_names(metrics or default_metrics(info, data_name, inception=inception),
                                 registry=registry)
    needs: set[str] = set()
    for name in names:
        entry = registry.get(name, "metric", where=f"metrics.{name}")
        try:
            needs |= entry.factory(entry.make_params({}, where=f"metrics.{name}")).requires(info)
        except Exception:  # a plugin metric without defaults: assume it reads the embedding
            needs.add("embedding")
    if needs & {"embedding", "probs"} and uses_inception(info, data_name, feature_net=feature_net,
                                                           inception=inception):
        return inception_weights(inception, download=True)
    return None


# ---------------------------------------------------------------------------- evaluate


def _real_subset(x: torch.Tensor, n: int, seed: int) -> torch.Tensor:
    """The real rows scored for ``n_real = n`` and ``seed`` (:func:`gantk.refstats.subset_indices`)."""
    from .refstats import rows_of, subset_indices

    return rows_of(x, subset_indices(len(x), n, seed))


#: generated samples scored by default; Stacked MNIST's mode count follows PacGAN/VEEGAN (26,000)
DEFAULT_N = 10_000
STACKED_MODES_N = 26_000


def default_sample_count(info: Any, data_name: str | None, metrics: Iterable[str]) -> int:
    """``n`` when none is given: 26,000 for ``modes`` on stacked (3-channel) digit data, the
    published Stacked MNIST protocol; 10,000 otherwise."""

    stacked = classifier_family(data_name, info) is not None and int(info.shape[0]) == 3
    return STACKED_MODES_N if stacked and "modes" in set(metrics) else DEFAULT_N


def reference_data(pipeline: Any, ref: str = "train") -> torch.Tensor:
    """The real images scores compare against: the training data (``train``), or the same data
    set's ``test`` split where its options have a ``split`` (torchvision sets)."""

    if ref == "train":
        return pipeline.real_data()[0]
    if ref != "test":
        raise SpecError(f"unknown reference split {ref!r}", where="--ref", fix="use train or test.")
    part = pipeline.resolved.data
    fields = type(part.params).model_fields
    if "split" not in fields:
        raise SpecError(f"data set {part.entry.name!r} has no test split (it has no `split` "
                        "option)", where="--ref", fix="score against the training data "
                        "(--ref train), or use a data set with both splits (e.g. mnist, cifar10).")
    if getattr(part.params, "split") == "test":
        return pipeline.real_data()[0]
    x, _ = part.entry.factory(part.params.model_copy(update={"split": "test"}))
    return x


@contextlib.contextmanager
def progress_bar(enabled: bool, total: int) -> Iterator[Any]:
    """A rich bar on stderr over every batch evaluate processes (no-op when disabled)."""

    if not enabled:
        yield lambda it, label: it
        return
    from rich.console import Console
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                               TimeElapsedColumn, TimeRemainingColumn)

    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                  console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("evaluate", total=total)

        def wrap(it: Iterable[Any], label: str) -> Iterator[Any]:
            bar.update(task, description=label)
            for item in it:
                yield item
                bar.advance(task, len(item))
        yield wrap


def evaluate(pipeline: Any, metrics: list[str] | None = None, n: int | None = None,
             with_: list[Any] | None = None, batch_size: int = 500, *,
             options: dict[str, dict[str, Any]] | None = None, feature_net: str = "auto",
             inception: str | None = None, n_real: int | None = None, seed: int | None = None,
             ref: str = "train", cache: bool = True, progress: bool = False,
             ) -> dict[str, float | str]:
    """Generate ``n`` samples (default: :func:`default_sample_count`) in batches and score them
    with ``metrics`` (default: :func:`default_metrics`). ``options`` gives metric options (``{"prdc": {"nearest_k": 3}}``),
    ``feature_net`` forces a space (``auto``/``inception``/``digits``/``raw``), ``inception`` is a
    path to the Inception weights file or its folder (default: found or downloaded and verified,
    :mod:`gantk.metrics.inception`), ``n_real`` caps the real subset (default ``n``), ``seed``
    makes the draw reproducible without touching the caller's RNG stream. ``ref`` picks the
    real split (``train``/``test``); the real set's features are cached (:mod:`gantk.refstats`)
    unless ``cache`` is False; ``progress`` shows a bar on stderr over the batches, then a line
    every few seconds while a metric runs (on a terminal)."""

    registry = default_registry()
    info = pipeline.data_info
    data_name = getattr(getattr(pipeline, "spec", None), "data", None)
    data_name = getattr(data_name, "name", None)
    names = resolve_metric_names(metrics if metrics else
                                 default_metrics(info, data_name, inception=inception),
                                 registry=registry)
    if n is None:
        n = default_sample_count(info, data_name, names)
    if n < 2:
        raise SpecError(f"cannot evaluate {n} samples", where="n", fix="use n >= 2 (10000 is usual).")
    options = options or {}
    unknown = set(options) - set(names)
    if unknown:
        raise SpecError(f"options given for metric(s) not evaluated: {sorted(unknown)}",
                        where="options", fix=f"evaluate them too, or drop the options ({names}).")
    objs = []
    for name in names:
        entry = registry.get(name, "metric", where=f"metrics.{name}")
        objs.append(entry.factory(entry.make_params(options.get(name, {}), where=f"metrics.{name}")))
    needs: set[str] = set().union(*(o.requires(info) for o in objs))
    real_needs = set().union(*(o.requires(info) for o in objs if getattr(o, "uses_real", True)))
    device = getattr(pipeline, "device", "cpu")
    nets, note = _assign_nets(needs, info, data_name, feature_net=feature_net,
                              inception=inception, device=device)

    rng = torch.random.fork_rng(devices=[device] if torch.device(device).type == "cuda" else []) \
        if seed is not None else contextlib.nullcontext()
    from .refstats import reference_features, rows_of, subset_indices

    t0 = time.perf_counter()
    ref_x = reference_data(pipeline, ref)
    real_idx = subset_indices(len(ref_x), n_real or n, seed or 0)
    real_nets = {k: v for k, v in nets.items() if k in real_needs}
    with rng, progress_bar(progress, (len(real_idx) if real_nets else 0) + n) as bar:
        if seed is not None:
            torch.manual_seed(seed)
        world = getattr(pipeline, "world", None)
        if world is not None and world.size > 1:  # under torchrun: each rank its share, gathered
            real, fake = _split_extract(pipeline, world, rows_of(ref_x, real_idx), n, batch_size,
                                        with_, nets, real_nets)
            cached = "off"
        else:
            real, cached = reference_features(
                ref_x, real_nets,
                lambda rows: extract(bar(_batches(rows, batch_size), "real features"), real_nets),
                indices=real_idx, cache=cache, describe={"data": str(data_name), "ref": ref})
            fake = extract(bar(pipeline.sample_batches(n, batch_size=batch_size, with_=with_),
                               "generate + features"), nets)
    if len(fake) != n:
        raise MetricError(f"the pipeline generated {len(fake)} samples, {n} were asked for",
                          where="sample_batches", fix="report this bug.")

    result: dict[str, float | str] = {}
    with Heartbeat(progress) as beat:  # a line every few seconds on a terminal while scoring
        for i, obj in enumerate(objs):
            beat.stage(f"scoring {obj.name} ({i + 1}/{len(objs)})")
            for key, value in obj(real, fake, info).items():
                result[key] = float(value)
    if "embedding" in nets or "raw" in nets:
        result["feature_space"] = (nets.get("embedding") or nets["raw"]).space
    if "probs" in nets:
        result["is_space"] = nets["probs"].probs_space
    if "digit_probs" in nets:
        result["modes_space"] = nets["digit_probs"].probs_space
    elif "raw" in nets:
        result["modes_space"] = nets["raw"].space
    result["n"] = n
    result["n_real"] = len(real_idx) if real_needs else 0
    result["ref"] = ref
    result["ref_cache"] = cached
    result["seconds"] = round(time.perf_counter() - t0, 3)
    if note:
        result["note"] = note
    return result


def _split_extract(pipeline: Any, world: Any, real_x: torch.Tensor, n: int, batch_size: int,
                   with_: list[Any] | None, nets: dict[str, FeatureNet],
                   real_nets: dict[str, FeatureNet]) -> tuple[FeatureSet, FeatureSet]:
    """Features of the reals and of ``n`` samples, each rank computing its share; gathered in the
    single-process order, so the scores equal one process's for the same seed."""
    from ..train.distributed import share_sizes

    def gather(fs: FeatureSet, pieces: list[list[int]]) -> FeatureSet:
        for key in ("embedding", "probs", "digit_probs", "raw"):
            arr = getattr(fs, key)
            if arr is not None:
                rows = world.gather_rows(torch.from_numpy(np.ascontiguousarray(arr)), pieces)
                setattr(fs, key, rows.numpy())
        return fs

    part = world.share(len(real_x))
    real = gather(extract(_batches(real_x[part], batch_size), real_nets),
                  [share_sizes(len(real_x), world.size)])
    fake = extract(pipeline.sample_batches(n, batch_size=batch_size, with_=with_, split=True), nets)
    pieces = [share_sizes(min(batch_size, n - i), world.size) for i in range(0, n, batch_size)]
    return real, gather(fake, pieces)


# ---------------------------------------------------------------------------- run directory


def record_eval(run_dir: str | Path, result: dict[str, Any], *, step: int | None,
                metrics: list[str] | None = None, **extra: Any) -> Path:
    """Append one evaluation to ``RUN_DIR/eval.jsonl`` (the file ``eval_every`` also writes)."""

    path = Path(run_dir) / "eval.jsonl"
    row = {"step": step, **result, "metrics": metrics, "time": time.time(),
           "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **extra}
    append_jsonl(path, row)
    return path
