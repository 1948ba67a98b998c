# Two commands do all set-up on a fresh machine (Python 3.11, make, access to PyPI):
#   make up     the whole system on the embedded broker and store, with demo data
#   make test   lint, contract catalogue check, and the test suite
PYTHON ?= python3
UV_VERSION := 0.13.9
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV_PY := .venv/bin/python
export UV_PYTHON_DOWNLOADS := never

.PHONY: up test lint format catalogue bench infra sync clean

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

# The environment follows the lock file exactly; re-synced whenever either file changes.
.venv/.synced: $(UV) pyproject.toml uv.lock
	$(UV) sync --frozen --python $(PYTHON)
	@touch $@

sync: .venv/.synced

up: .venv/.synced
	$(VENV_PY) -m devstack up

test: .venv/.synced
	$(VENV_PY) -m ruff check .
	$(VENV_PY) -m ruff format --check .
	$(VENV_PY) -m contracts.catalogue --check
	$(VENV_PY) -m pytest -n 2 --dist loadfile

lint: .venv/.synced
	$(VENV_PY) -m ruff check .
	$(VENV_PY) -m ruff format --check .

format: .venv/.synced
	$(VENV_PY) -m ruff check --fix .
	$(VENV_PY) -m ruff format .

catalogue: .venv/.synced
	$(VENV_PY) -m contracts.catalogue

bench: .venv/.synced
	$(VENV_PY) -m bench.raw_capacity

infra: .venv/.synced
	$(VENV_PY) -m devstack infra

clean:
	rm -rf .venv $(TOOLS) .devstack .pytest_cache .ruff_cache
