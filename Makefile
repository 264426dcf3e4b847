# Two commands do all the set-up: `make demo` and `make test`.
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup server-env demo test bench clean

$(BIN)/python:
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "error: $(PYTHON) not found; set PYTHON=/path/to/python3.11"; exit 2; }
	$(PYTHON) -m venv $(VENV)

# torch first, pinned to the CPU build, so nothing later pulls a CUDA build.
$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet "torch==2.13.0"
	$(BIN)/pip install --quiet -e ".[dev]"
	@touch $(STAMP)

setup: $(STAMP)

# The embedded Argilla server's own virtual environment (its pins clash with ours):
# .venv-argilla, or $$RLHF_ARGILLA_VENV. A no-op once its stamp file is there.
server-env: setup
	$(BIN)/python -m annotation.server.env

demo: setup server-env
	$(BIN)/rlhf run quickstart

test: setup server-env
	$(BIN)/python -m pytest -q tests

bench: setup server-env
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .venv-argilla .venv-argilla.lock runs mlflow.db mlartifacts
