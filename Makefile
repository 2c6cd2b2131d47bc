# Set-up is automatic: every target creates .venv from requirements.txt when needed.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: setup test demo notebooks data benchmark clean

$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

setup: $(VENV)/.installed

test: setup            ## the whole suite, notebooks included (smoke mode)
	$(PY) -m pytest -q tests

demo: setup            ## the detection pipeline on the built-in sample image
	$(PY) detect.py --json outputs/astronaut_keypoints.json

notebooks: setup       ## re-execute the notebooks on the full data, outputs written back
	$(PY) notebooks/run_notebooks.py --write

data: setup            ## download Udacity's data into ./data
	$(PY) download_data.py

benchmark: setup       ## CNN vs dlib on the test split (installs the optional dlib packages)
	$(PY) -m pip install --quiet dlib-bin face-recognition-models
	$(PY) benchmarks/dlib_vs_cnn.py --json saved_models/results/benchmark.json

clean:
	rm -rf outputs runs .pytest_cache
