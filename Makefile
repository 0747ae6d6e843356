# zest-mock: `make mock` serves the mock on http://localhost:8080, `make test` runs the whole suite.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PORT   ?= 8080

.PHONY: mock test lint bench clean

$(BIN)/zest-mock: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	@touch $@

mock: $(BIN)/zest-mock
	$(BIN)/zest-mock serve --port $(PORT) --admin-policy demo

test: $(BIN)/zest-mock
	$(BIN)/ruff check .
	$(BIN)/pytest

# A report, not a test: exit 0 even when a target is missed. make bench BENCH_ARGS="--only http --json"
bench: $(BIN)/zest-mock
	$(BIN)/python bench/run.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache
