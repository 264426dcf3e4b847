# Two commands do all the set-up: `make demo` and `make test`.
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup server-env browser demo test bench clean

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

# Debian's Chromium + ChromeDriver for the annotation UI's browser test: installed with apt-get
# when missing (as root, or through sudo); otherwise say what to install.
browser:
	@if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then exit 0; fi; \
	if ! command -v apt-get >/dev/null 2>&1; then \
	  echo "warning: install Chromium and ChromeDriver (/usr/bin/chromium, /usr/bin/chromedriver) for the browser test"; exit 0; fi; \
	SUDO=""; [ "$$(id -u)" = 0 ] || SUDO="sudo"; \
	echo "installing Debian's chromium and chromium-driver for the browser test"; \
	DEBIAN_FRONTEND=noninteractive $$SUDO apt-get update -qq && \
	DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null

demo: setup server-env
	$(BIN)/rlhf run quickstart

test: setup server-env browser
	$(BIN)/python -m pytest -q tests

bench: setup server-env
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .venv-argilla .venv-argilla.lock runs mlflow.db mlartifacts
