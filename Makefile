# Two entry points for a fresh Debian machine: `make demo` and `make test`.
# Each installs what it needs itself: Debian packages when run as root, a virtualenv.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: test lint unit demo demo-stop venv system-deps bench dist clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

venv: $(BIN)/.installed

system-deps:
	@scripts/install-system-deps

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# Most tests wait on real services (watch windows, timeouts), not on the CPU: four
# workers on two cores; tests that share one-per-machine resources stay on one worker
# (tests/conftest.py). TEST_WORKERS=0 runs them in this process, one after the other.
TEST_WORKERS ?= 4
# The second run: the agent's real-service tests again, with the one-file agent under a
# debootstrapped Debian 11's own Python 3.9 (tests/support/py39.py).
test: system-deps venv lint
	$(BIN)/pytest -n $(TEST_WORKERS)
	$(BIN)/pytest -n $(TEST_WORKERS) --agent-python39 tests/integration/agent

# The wheel and the one-file agent per arch, in dist/ (packaging/dist/build.py).
dist: venv
	$(BIN)/python packaging/dist/build.py

unit: venv
	$(BIN)/pytest tests/unit

demo: system-deps venv
	$(BIN)/python scripts/demo.py

demo-stop: venv
	$(BIN)/python scripts/demo.py --stop

bench: system-deps venv
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache dist
