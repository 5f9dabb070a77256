"""How many CPU threads torch's intra-op pool uses while a Pipeline trains.

torch starts with one thread per physical core. For the small networks gantk trains on a CPU that
is only right on an idle machine: on a shared one the OpenMP team waits at every operator for a
thread that is not running, and the same steps take 2 to 5 times as long as on one thread
(benchmarks/threads.py measures it). The choice, in order:

1. ``train.threads`` when the stack sets it;
2. ``OMP_NUM_THREADS`` when the environment sets it (a ``gantk sweep`` worker sets it to the
   sweep's ``threads``; torch read it at start);
3. for a resumed run directory, the count it started with (stored in its checkpoints): the
   thread count changes the rounding of some operators, and a resumed run is meant to go on
   bit-identically;
4. otherwise the free physical cores: physical cores (at most the CPUs this process may run on
   and its cgroup quota), less the whole number of the load average, at least 1 and at most
   :data:`CAP`.

The count changes nothing but rounding, so a run may resume with another one set explicitly
(``train.threads`` is a bookkeeping key).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

CAP = 8  # more threads than this do not speed up the small nets gantk trains on a CPU


@dataclass(frozen=True)
class ThreadChoice:
    threads: int
    why: str  # where the number came from, for the line shown at start

    def line(self) -> str:
        return f"cpu threads: {self.threads} ({self.why})"


def physical_cores() -> int:
    """Physical cores this process may use (hyper-threads not counted; CPU affinity and a
    cgroup v2 quota respected); ``os.cpu_count()`` where /proc/cpuinfo says nothing."""
    logical = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else \
        (os.cpu_count() or 1)
    cores: set[tuple[str, str]] = set()
    try:
        phys = core = ""
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            key = key.strip()
            if key == "physical id":
                phys = value.strip()
            elif key == "core id":
                core = value.strip()
                cores.add((phys, core))
    except OSError:
        pass
    n = min(len(cores), logical) if cores else logical
    try:  # a container's CPU quota: "max 100000" or "200000 100000"
        quota, period = (Path("/sys/fs/cgroup/cpu.max").read_text().split() + ["", ""])[:2]
        if quota != "max":
            n = min(n, max(1, math.floor(int(quota) / int(period))))
    except (OSError, ValueError, ZeroDivisionError):
        pass
    return max(1, n)


def load_average() -> float:
    try:
        return os.getloadavg()[0]
    except (OSError, AttributeError):
        return 0.0


def choose_threads(setting: int | None, environ: dict[str, str] | None = None, *,
                   cores: int | None = None, load: float | None = None,
                   resumed: int | None = None) -> ThreadChoice:
    """The thread count for training (see the module's text for the order); ``resumed``: the
    count a resumed run started with, kept so that it goes on bit-identically."""
    env = os.environ if environ is None else environ
    if setting:
        return ThreadChoice(int(setting), "train.threads")
    raw = env.get("OMP_NUM_THREADS", "").strip()
    if raw.isdigit() and int(raw) >= 1:
        return ThreadChoice(int(raw), "OMP_NUM_THREADS")
    if isinstance(resumed, int) and not isinstance(resumed, bool) and 1 <= resumed <= 1024:
        return ThreadChoice(resumed, "as the run started: the same rounding on resume; set "
                                     "train.threads or OMP_NUM_THREADS to change it")
    cores = physical_cores() if cores is None else cores
    load = load_average() if load is None else load
    free = max(1, min(cores - int(load), CAP))
    return ThreadChoice(free, f"auto: {cores} physical core(s), load average {load:.1f}; "
                              "set train.threads or OMP_NUM_THREADS to choose")


def apply_threads(setting: int | None, resumed: int | None = None) -> ThreadChoice:
    """Choose and set torch's intra-op thread count for this process."""
    import torch

    choice = choose_threads(setting, resumed=resumed)
    if torch.get_num_threads() != choice.threads:
        torch.set_num_threads(choice.threads)
    return choice
