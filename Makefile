# zest-mock: `make mock` serves the mock on http://localhost:$(PORT), `make test` runs the whole suite,
# `make dist` builds a wheel into dist/.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PORT   ?= 8080
DIST   ?= dist

.PHONY: mock test lint bench dist clean

# Serving needs only the package's own dependencies; the test extras (schemathesis, hypothesis, ruff) come with
# `make test`.
$(VENV)/.serve-installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e .
	@touch $@

$(VENV)/.test-installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	@touch $@ $(VENV)/.serve-installed

mock: $(VENV)/.serve-installed
	$(BIN)/zest-mock serve --port $(PORT) --admin-policy demo

test: $(VENV)/.test-installed
	$(BIN)/ruff check .
	$(BIN)/pytest

# A report, not a test: exit 0 even when a target is missed. make bench BENCH_ARGS="--only http --json"
bench: $(VENV)/.serve-installed
	$(BIN)/python bench/run.py $(BENCH_ARGS)

dist: $(VENV)/.serve-installed
	$(BIN)/pip wheel -q --no-deps --wheel-dir $(DIST) .
	rm -rf build

clean:
	rm -rf $(VENV) $(DIST) build *.egg-info .pytest_cache
