# pyACTRECOG: every target installs what it needs first (make install is idempotent).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
DEMO_DIR ?= demo_output
DEMO_STYLE ?= pose

.PHONY: install test test-fast demo gcs-test info bench bench-peers clean-demo readme

install: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $(STAMP)

# make test and make test-fast: two pytest-xdist workers (the 2-core machine's cores),
# a module at a time each, the modules with the most slow tests first
# (tests/conftest.py); TEST_WORKERS=0: one process.
TEST_WORKERS ?= 2

test: install
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile tests

# The edit-test loop: everything but the tests marked slow (training runs, kills, GCS).
test-fast: install
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile -m "not slow" tests

demo: install
	DEMO_DIR=$(DEMO_DIR) DEMO_STYLE=$(DEMO_STYLE) $(PY) scripts/demo.py

gcs-test: install
	ACTRECOG_REQUIRE_GCS=1 $(PY) -m pytest -q -m gcs tests

info: install
	$(PY) -m coreLib.models.model_info info

bench: install
	$(PY) bench/preprocess.py
	$(PY) bench/input_pipeline.py
	$(PY) bench/train_step.py
	$(PY) bench/score.py
	$(PY) bench/videogen.py
	$(PY) bench/export.py
	$(PY) bench/models.py
	$(PY) bench/detect.py --litert
	$(PY) bench/live.py
	$(PY) bench/accuracy.py
	$(PY) bench/legacy_open.py
	$(PY) bench/hand_crop.py
	@echo "not run here: bench/gpu_models.py (KERAS_BACKEND=jax on an accelerator with JAX; its docstring says how)"
	@echo "not run here: bench/peers.py and bench/peers_movinet.py, its MoViNet side (make bench-peers: an environment of their own)"

# bench/peers.py: MoViNet-A0-Stream (TensorFlow Model Garden, TF 2.20 + tf-keras) in an
# environment of its own; the project's runtime never imports it.
PEERS_VENV := .venv-peers
PEERS_STAMP := $(PEERS_VENV)/.installed-stamp
PEERS_WORK_DIR ?= bench/.cache/peers
# e.g. make bench-peers PEERS_ARGS='--steps 8 --families pose --output /tmp/peers.json'
PEERS_ARGS ?=

$(PEERS_STAMP): bench/requirements-peers.txt
	test -x $(PEERS_VENV)/bin/python || $(PYTHON) -m venv $(PEERS_VENV)
	$(PEERS_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r bench/requirements-peers.txt
	touch $(PEERS_STAMP)

bench-peers: install $(PEERS_STAMP)
	$(PY) bench/peers.py --work-dir $(PEERS_WORK_DIR) $(PEERS_ARGS)

clean-demo:
	rm -rf $(DEMO_DIR)

readme: install
	$(PY) scripts/readme_usage.py
