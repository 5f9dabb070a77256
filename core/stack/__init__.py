"""Declaring and assembling a stack: spec models and stack files, the registry, the hook specs,
the plugin manager, the built-in plugin and the build of networks and components."""
