# Two commands on a fresh machine:  `make demo` (set up + fuse the bundled sample pair)  and  `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cksum requirements.txt | cut -d' ' -f1)

.PHONY: setup demo test benchmark clean

$(STAMP): requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -r requirements.txt
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

setup: $(STAMP)

demo: setup
	cd monai_bundle && ../$(PY) -m scripts.demo --output_dir ../out/demo

test: setup
	$(PY) -m pytest -q tests

clean:
	rm -rf $(VENV) out
