"""First-party experiment loggers, each its own entry point (``tensorboard``, ``wandb``,
``mlflow``) and each a plugin object built only on gantk's event hooks (see base.py and
docs/plugins.md). ``wandb`` and ``mlflow`` import their library only when a run uses them."""
