# One-command set-up for a fresh machine: `make demo` (main job) and `make test` (test suite).
# torch and torchvision are pinned as a matching pair; an unpinned torch pulls gigabytes.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
TORCH  := torch==2.14.1 torchvision==0.29.1
RUN    ?= runs/ring

.PHONY: setup demo test test-all bench clean

$(BIN)/.gantk-installed: pyproject.toml examples/gantk-plugin-example/pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(TORCH)
	$(BIN)/python -m pip install --quiet -e '.[test]' -e examples/gantk-plugin-example
	touch $@

setup: $(BIN)/.gantk-installed

# The main job: train the default stack (AdvLatGAN's Ring with its MLP nets) on the embedded data,
# then score it and draw it. Writes $(RUN)/samples/*.png, metrics.jsonl, eval.jsonl, plots/.
demo: setup
	$(BIN)/gantk train examples/stacks/ring.toml --out $(RUN)
	$(BIN)/gantk eval $(RUN) --n 10000
	$(BIN)/gantk plot $(RUN)

test: setup
	$(BIN)/python -m pytest -q -m "not slow"

test-all: setup
	$(BIN)/python -m pytest -q

bench: setup
	$(BIN)/python benchmarks/step_overhead.py

clean:
	rm -rf $(VENV) runs .pytest_cache
