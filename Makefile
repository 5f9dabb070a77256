# One-command set-up for a fresh machine: `make demo` (main job) and `make test` (test suite).
# torch and torchvision are pinned as a matching pair; an unpinned torch pulls gigabytes.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
TORCH  := torch==2.14.1 torchvision==0.29.1
DEMO   ?= runs/demo
# setuptools prints a notice on every editable install of a package-dir layout ("Editable
# installation ... folders with the same name as your package"): information, not a problem of
# this project; silenced so that `make setup` prints only what needs the user.
# No CPU-only build of the pinned pair is on the indexes pip reaches here (issue 29: the only CPU
# torch offered is 2.13.0+cpu in /opt/wheels, no torchvision +cpu), so PyPI's build is installed.
QUIET_EDITABLE := PYTHONWARNINGS=ignore::UserWarning:setuptools.command.editable_wheel

.PHONY: setup demo test test-all bench clean

$(BIN)/.gantk-installed: pyproject.toml examples/gantk-plugin-example/pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(TORCH)
	$(QUIET_EDITABLE) $(BIN)/python -m pip install --quiet -e '.[test]' -e examples/gantk-plugin-example
	touch $@

setup: $(BIN)/.gantk-installed

# The main job: the quickest claim that reproduced here (docs/reproduction.md): AdvLatGAN's Ring
# with the paper's MLP nets, plain sampling vs the post-training latent search advlat_z, 10 seeds,
# embedded data. Prints the comparison table (the paired verdict over seeds), writes $(DEMO)/summary.*
# and $(DEMO)/side_by_side.png. Running it again skips finished runs.
demo: setup
	$(BIN)/gantk sweep examples/sweeps/demo.toml --out $(DEMO)
	$(BIN)/python examples/sweep_scatter.py $(DEMO)

# lint-imports first: the layers contract in pyproject.toml (docs/architecture.md)
test: setup
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -q -m "not slow"

test-all: setup
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -q

bench: setup
	$(BIN)/python benchmarks/step_overhead.py

clean:
	rm -rf $(VENV) runs .pytest_cache
