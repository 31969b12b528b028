# The two commands of the README:
#   make run   — install and run collectguard on its embedded default (SQLite + demo data), web UI on :8000
#   make test  — install and run the whole test suite (+ ruff, mypy, import-linter)
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 8000

.PHONY: run test install install-dev lint browser-deps clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install -q -e .

install-dev: $(BIN)/python
	$(BIN)/pip install -q -e '.[dev]'

run: install
	$(BIN)/collectguard serve --demo --port $(PORT)

# Debian's Chromium and CJK fonts for the browser tests (never a browser download); skipped quietly
# when apt is unavailable or we are not root — the browser tests then skip with a message.
browser-deps:
	@if [ ! -x /usr/bin/chromium ] && command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-cjk >/dev/null) \
	  || echo "warning: could not install chromium/fonts-noto-cjk; browser tests will skip"; fi

lint: install-dev
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy src/collectguard/domain src/collectguard/rules src/collectguard/policy
	$(BIN)/lint-imports

test: install-dev browser-deps lint
	$(BIN)/pytest -q -p no:cacheprovider -n 2

clean:
	rm -rf $(VENV) build *.egg-info collectguard.db*
