PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: run lint test clean browser

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "kafkapy needs Python 3.11 or newer")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e .
	@touch $@

$(VENV)/.installed-test: $(VENV)/.installed pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $@

run: $(VENV)/.installed
	$(BIN)/kafkapy --override listeners=PLAINTEXT://127.0.0.1:9092 --override log.dirs=./kafkapy-data

# The browser test of the compatibility report drives Debian's chromium; where it cannot
# be installed (no apt, not root), that one test skips and a parser check remains.
browser:
	@command -v chromium >/dev/null 2>&1 || { command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ] \
		&& { apt-get install -y -qq --no-install-recommends chromium >/dev/null 2>&1 \
		     || { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq --no-install-recommends chromium >/dev/null 2>&1; }; } \
		|| echo "chromium is not installed: the browser test of the compatibility report will skip"; }

# Static checks, run by `make test` before the tests (configured in pyproject.toml;
# mypy checks the files it lists there, the package).
lint: $(VENV)/.installed-test
	$(BIN)/ruff check kafkapy tests compat_tests benchmarks examples
	$(BIN)/mypy

test: lint browser
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) kafkapy-data
