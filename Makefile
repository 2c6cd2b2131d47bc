# Set-up is automatic: every target creates .venv from requirements.txt when needed.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: setup test demo notebooks data benchmark benchmark-update clean
# where `make benchmark` writes its table; `make benchmark-update` refreshes the committed one
BENCHMARK_JSON ?= outputs/benchmark.json

$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

setup: $(VENV)/.installed

test: setup            ## the whole suite, notebooks included (smoke mode); fetches the data first if absent
	$(PY) tests/find_data.py --download
	$(PY) -m pytest -q tests

demo: setup            ## the detection pipeline on the built-in sample image
	$(PY) detect.py --json outputs/astronaut_keypoints.json

notebooks: setup       ## re-execute the notebooks on the full data, outputs written back
	$(PY) notebooks/run_notebooks.py --write

data: setup            ## download Udacity's data into ./data
	$(PY) download_data.py

benchmark: setup       ## CNN vs dlib on Udacity test and LFPW test (installs the optional dlib packages)
	$(PY) -m pip install --quiet dlib-bin==20.0.1.post1 face-recognition-models==0.3.0
	$(PY) benchmarks/dlib_vs_cnn.py --json $(BENCHMARK_JSON)

benchmark-update:      ## the same, replacing the committed saved_models/results/benchmark.json
	$(MAKE) benchmark BENCHMARK_JSON=saved_models/results/benchmark.json

clean:
	rm -rf outputs runs .pytest_cache
