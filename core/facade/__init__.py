"""The Pipeline (a built stack you can train, sample, save, load and evaluate) and the one
training loop that both ``Pipeline.train()`` and run directories use."""
