# medface: every setup step lives here, so a fresh clone needs only `make demo` or `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.medface-installed
# CPU build on this kind of machine (the wheel lies on disk); on a CUDA machine PyPI's
# torch==2.13.0 is the CUDA build. Override e.g. with TORCH_SPEC="torch==2.13.0 --index-url URL".
TORCH_SPEC ?= torch==2.13.0
PLUGIN_DIRS := $(sort $(dir $(wildcard plugins/*/pyproject.toml)))
PYTEST_ARGS ?=
OUT ?= demo_output

.PHONY: install browser demo test test-all bench fuzz clean

install: $(STAMP)

$(STAMP): pyproject.toml $(addsuffix pyproject.toml,$(PLUGIN_DIRS)) Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(TORCH_SPEC)
	$(PY) -m pip install --quiet -e ".[test,onnx,batch,workstation]" $(addprefix -e ./,$(PLUGIN_DIRS))
	$(VENV)/bin/medface plugins validate
	touch $@

# headless Chromium for the browser tests (Debian's package; needs root, as on CI)
browser:
	@command -v chromium >/dev/null 2>&1 || { command -v apt-get >/dev/null 2>&1 && \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } || \
		echo "note: chromium could not be installed; the browser tests will be skipped"

demo: install
	$(PY) scripts/demo.py --out $(OUT)

test: install browser
	$(PY) -m pytest -n 2 -q $(PYTEST_ARGS)

test-all: install browser
	$(PY) -m pytest -n 2 -q -m "not gpu" $(PYTEST_ARGS)

# 10,000 mutated inputs per reader (hours on 2 cores; FUZZ_INPUTS=1000 for a shorter run): docs/reliability.md
FUZZ_INPUTS ?= 10000
fuzz: install
	$(PY) -m tests.fuzzing.harness --inputs $(FUZZ_INPUTS) --out fuzz-report.json

bench: install
	@for script in benchmarks/*.py; do echo "== $$script"; $(PY) $$script || exit 1; done

clean:
	rm -rf $(VENV) $(OUT) bench_output .pytest_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
