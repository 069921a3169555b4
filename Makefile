# pyACTRECOG: every target installs what it needs first (make install is idempotent).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
DEMO_DIR ?= demo_output
DEMO_STYLE ?= pose

.PHONY: install test test-fast demo gcs-test info bench clean-demo readme

install: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $(STAMP)

test: install
	$(PY) -m pytest -q tests

# The edit-test loop: everything but the tests marked slow (training runs, kills, GCS).
test-fast: install
	$(PY) -m pytest -q -m "not slow" tests

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
	$(PY) bench/accuracy.py
	$(PY) bench/legacy_open.py
	@echo "not run here: bench/gpu_models.py (KERAS_BACKEND=jax on an accelerator; see docs)"

clean-demo:
	rm -rf $(DEMO_DIR)

readme: install
	$(PY) scripts/readme_usage.py
