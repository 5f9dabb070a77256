"""Data sets (the built-in toy sets, folders, torchvision sets, the real-MNIST 5k) and the streams
that batch them. Imports only :mod:`gantk.base`."""
