"""Sweeps: a file of cells and seeds expanded into runs, launched as worker processes, summarised
and compared with paired statistics. (The public entry points are ``gantk.sweep`` and
``gantk.Sweep``.)"""
