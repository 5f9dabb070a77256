"""Sweep launchers that run a sweep's runs somewhere other than child processes of this machine.

Registered through the ``launchers`` entry point; each launcher implements the
``gantk_sweep_launcher`` hook (:mod:`gantk.sweeping.launch` describes the launcher protocol).
"""
