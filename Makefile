# Two entry points for a fresh Debian machine: `make demo` and `make test`.
# Each installs what it needs itself: Debian packages when run as root, a virtualenv.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: test test-quick test-for lint unit demo demo-stop venv system-deps bench dist clean

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

# The quick set, meant to take under a minute (docs/testing.md): ruff, then the unit tests
# and the routes in this process (pytest -m "not slow": nothing that starts a real service),
# with a coverage report listing the source lines they leave to the integration tests.
# CPU-bound: one worker per core.
test-quick: venv
	$(BIN)/ruff check .
	$(BIN)/pytest -n auto -m "not slow" --cov --cov-report=term-missing:skip-covered \
		tests/unit tests/routes

# The tests that cover a source file or folder, as tests/map.py lists them:
#   make test-for src/ansible_proxy/agent/tick.py      (or FOR=…; QUICK=1: not the slow ones)
ifeq (test-for,$(firstword $(MAKECMDGOALS)))
PATHS_GIVEN := $(wordlist 2,$(words $(MAKECMDGOALS)),$(MAKECMDGOALS))
FOR += $(PATHS_GIVEN)
.PHONY: $(PATHS_GIVEN)
$(eval $(PATHS_GIVEN):;@:)
endif
test-for: venv
	$(BIN)/python scripts/test_for.py $(if $(QUICK),--quick) --workers $(TEST_WORKERS) $(FOR)

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
