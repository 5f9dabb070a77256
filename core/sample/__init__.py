"""Sampling (truncation, seeds, interpolation) and pictures (grids, scatter plots, figures)."""
