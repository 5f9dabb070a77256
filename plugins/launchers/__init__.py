"""Sweep launchers that run a sweep's runs somewhere other than child processes of this machine.

Registered through the ``launchers`` entry point; each launcher implements the
``gantk_sweep_launcher`` hook (:mod:`gantk.sweeping.launch` describes the launcher protocol).

* ``submitit`` (:mod:`.slurm`): each run one SLURM job through submitit, or one of submitit's
  local processes (``cluster = "local"``); needs the ``slurm`` extra (``pip install
  'gantk[slurm]'``), imported only when a sweep names it.
"""

from __future__ import annotations

from typing import Any

from gantk import hookimpl


@hookimpl
def gantk_sweep_launcher(name: str, jobs: int) -> Any:
    if name != "submitit":
        return None
    try:
        import submitit  # noqa: F401 - the launcher needs it at submission
    except ImportError:
        from gantk import PluginError

        raise PluginError("launcher = \"submitit\" needs the submitit package, which is not "
                          "installed", where="launcher",
                          fix="pip install 'gantk[slurm]' (or pip install submitit).") from None
    from .slurm import SubmititLauncher

    return SubmititLauncher(jobs)
