"""Plain, hand-written reference GANs for benchmarks/backbone_parity.py.

Nothing here imports gantk: each net is the textbook version of a family, written the way a
careful engineer would write it from the papers, so the parity benchmark can tell whether gantk's
backbones are at least as good as a plain implementation trained the same way.
"""
