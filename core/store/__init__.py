"""Run directories on disk: checkpoints, the run lock, provenance, reading run folders and the
sweep job files. Imports only the layers below (train, datasets, base)."""
