"""The training step: the trainer (the one place that orders a step), the EMA of G, mixed
precision, several processes, and the signals that stop a run at a step boundary. Imports only
:mod:`gantk.base`."""
