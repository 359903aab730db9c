# Two commands for a fresh machine (Python 3.11; root for the one system package):
#   make all    set up, then run every analysis: figures/ and results/
#   make test   set up, then run the default test tiers (slow ones: make test-slow)
#   make docs   set up, then build the documentation site into docs/_build/html
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: all analyses test test-slow docs setup blas clean

all: analyses

analyses: setup
	$(BIN)/python -m analyses all

test: setup
	$(BIN)/python -m pytest

test-slow: setup
	$(BIN)/python -m pytest -m slow

# Warnings are errors: a broken link, figure or docstring fails the build.
docs: setup
	$(BIN)/python -m sphinx -W --keep-going -b html docs docs/_build/html

setup: blas $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e ".[test,jax,docs,bambi]"
	touch $@

# PyTensor links OpenBLAS through models/_config/blas.py; Debian's libopenblas-dev provides it.
blas:
	@if $(PYTHON) models/_config/blas.py; then \
		echo "OpenBLAS found: PyTensor will link it"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "Installing libopenblas-dev so PyTensor can link a BLAS"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libopenblas-dev >/dev/null; \
	else \
		echo "WARNING: no OpenBLAS; install libopenblas-dev (Debian/Ubuntu) or openblas, or models run ~3.5x slower" >&2; \
	fi

clean:
	rm -rf $(VENV) results
