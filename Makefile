# Two commands do all set-up on a fresh machine:
#   make chat   -> install, index the bundled interviews on first run, open the web chat
#   make test   -> install (with test extras and Chromium), run the whole test suite
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: chat test chromium

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch first, from the machine's local CPU wheel; otherwise pip pulls GBs of CUDA packages
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[test]"
	touch $(STAMP)

chat: $(STAMP)
	$(VENV)/bin/rag serve

chromium:
	@command -v chromium >/dev/null 2>&1 || { apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-cjk >/dev/null; }

test: $(STAMP) chromium
	$(PY) -m pytest
