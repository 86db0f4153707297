# The two commands of the README: `make run` and `make test`. Everything else is for developers.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: run test lint bench chromium install clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

chromium:
	@scripts/ensure-chromium.sh

run: install chromium
	$(BIN)/bastion up

test: install chromium
	@scripts/test.sh

lint: install
	$(BIN)/ruff format --check bastion tests bench
	$(BIN)/ruff check bastion tests bench
	$(BIN)/mypy bastion

bench: install chromium
	@for b in bench/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) build *.egg-info
