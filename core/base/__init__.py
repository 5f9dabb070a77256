"""The ground floor: the four interfaces, the error types, and safe file I/O. Imports nothing else
of gantk."""
