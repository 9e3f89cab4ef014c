# The two commands: `make run` (the product with demo data) and `make test` (everything CI runs).
# Needs only Python 3.11 or 3.12; everything else is installed into .venv.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: run test install lint bench clean sso-demo

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@# uv is much faster; take the machine's, else install it into the venv, else use pip.
	@if command -v uv >/dev/null 2>&1; then UV=uv; \
	 elif $(VENV)/bin/pip install -q uv >/dev/null 2>&1; then UV=$(VENV)/bin/uv; \
	 else UV=; fi; \
	 if [ -n "$$UV" ]; then $$UV pip install -q --python $(PY) -r pyproject.toml --extra dev; \
	 else $(VENV)/bin/pip install -q -e '.[dev]'; fi
	@rm -f $(VENV)/.installed-*; touch $(STAMP)

run: install
	$(PY) -m revops.devrun

test: install
	$(PY) -m revops.devtest

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# With `make run` going: the local OIDC and SAML identity providers for the demo's logins.
sso-demo: install
	DEBUG=$${DEBUG:-true} $(PY) manage.py sso_demo

bench: install
	$(PY) -m bench

clean:
	rm -rf .run staticfiles test-artifacts
