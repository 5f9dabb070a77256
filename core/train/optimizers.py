"""Optimisers of a training run: parameters (and param-group dicts) into param groups, and the
optimiser ``train.optimizer`` names with the stack's learning rates, betas and weight decay (a
backbone's ``optimizer_overrides`` may scale the learning rate or set other betas)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch


def param_groups(items: Iterable[Any], lr: float) -> list[dict[str, Any]]:
    """Parameters or param-group dicts -> param groups (plain parameters get ``lr``)."""
    groups, plain = [], []
    for item in items:
        (groups if isinstance(item, dict) else plain).append(item)
    if plain:
        groups.append({"params": plain, "lr": lr})
    return [g for g in groups if list(g["params"])]


def make_optimizer(groups: list[dict[str, Any]], train: Any, *, lr: float,
                   override: dict[str, Any] | None = None) -> torch.optim.Optimizer:
    override = override or {}
    scale = override.get("lr_scale", 1.0)
    for g in groups:
        g["lr"] = g.get("lr", lr) * scale
    betas = tuple(override.get("betas", train.betas))
    if train.optimizer == "adam":
        return torch.optim.Adam(groups, lr=lr * scale, betas=betas, weight_decay=train.weight_decay)
    if train.optimizer == "rmsprop":
        return torch.optim.RMSprop(groups, lr=lr * scale, weight_decay=train.weight_decay)
    return torch.optim.SGD(groups, lr=lr * scale, momentum=betas[0], weight_decay=train.weight_decay)
