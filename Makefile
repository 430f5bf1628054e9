# selreload — `make test` and `make demo` are all a newcomer needs.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed-stamp
SOURCES := selreload tests benchmarks examples

.PHONY: test lint typecheck unit demo bench etcd chromium clean

# The venv is built on first use and rebuilt when pyproject.toml changes.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

test: lint typecheck unit

lint: $(STAMP)
	$(BIN)/ruff check $(SOURCES)
	$(BIN)/ruff format --check $(SOURCES)

typecheck: $(STAMP)
	$(BIN)/mypy

# Branch coverage of the library, the CLI included (its tests run it in-process too).
unit: $(STAMP) etcd chromium
	$(BIN)/coverage run -m pytest
	$(BIN)/coverage report

demo: $(STAMP)
	$(BIN)/selreload demo

bench: $(STAMP)
	for b in benchmarks/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

# The fleet tests need a real etcd (Debian: etcd-server). When it is missing and we are
# root with apt-get, it is installed, after saying so; NO_APT=1 skips that (the fleet
# tests then skip with a hint, and fail under CI=true).
etcd:
	@command -v etcd >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && [ -z "$(NO_APT)" ]; then \
	    echo "etcd not found: installing the Debian package etcd-server with apt-get (NO_APT=1 skips this)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq etcd-server >/dev/null; \
	  else echo "etcd not found: install it with 'apt-get install etcd-server' to run the fleet tests"; fi; }

# The admin console test drives a headless Debian chromium over the DevTools protocol
# (no browser download: the distribution's package). Installed the same way as etcd.
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing chromium (apt)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "chromium not found: install it with 'apt-get install chromium' to run the console test"; fi; }

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis build dist
