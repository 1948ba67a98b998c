# Two commands do all set-up on a fresh machine (Python 3.11, make, access to PyPI):
#   make up     the whole system on the embedded broker and store, with demo data
#   make test   lint, contract catalogue check, and the test suite
PYTHON ?= python3
UV_VERSION := 0.13.9
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV_PY := .venv/bin/python
export UV_PYTHON_DOWNLOADS := never

.PHONY: up test lint format catalogue bench infra fuzz sync clean

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

# Property-based fuzzing of every operation through the gateway of a running `make up`
# (schemathesis, run in its own throw-away environment), as a new tenant each run: any 500
# is a failure.
SCHEMATHESIS_VERSION := 4.32.5
GATEWAY ?= http://127.0.0.1:8080
FUZZ_TENANT ?= fuzz-$(shell date +%s)
fuzz: $(UV)
	$(UV) tool run schemathesis==$(SCHEMATHESIS_VERSION) run $(GATEWAY)/api/v1/openapi.json \
		--url $(GATEWAY) --checks not_a_server_error --max-examples 10 \
		--header "X-Tenant-Id: $(FUZZ_TENANT)" --header "X-Actor-Id: ops-1" --header "X-Actor-Roles: admin" \
		--exclude-path-regex stream --workers 2

clean:
	rm -rf .venv $(TOOLS) .devstack .pytest_cache .ruff_cache
