# Taskwire: `make run` starts everything locally, `make test` runs the whole suite.
# Both create the virtualenv and install the pinned dependencies first, so either is enough on
# a fresh machine with Python 3.11.

PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed

.PHONY: run test lint format schema gateway-conf aws-template lambda-package compose-test bench evidence clean

$(INSTALLED): requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

run: $(INSTALLED)
	$(PY) -m local.run

test: $(INSTALLED)
	$(PY) -m pytest

lint: $(INSTALLED)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

format: $(INSTALLED)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# Regenerate the committed OpenAPI schema after changing the API (a test checks they agree).
schema: $(INSTALLED)
	DEBUG=true $(PY) manage.py spectacular --urlconf local.urls --validate --fail-on-warn --file docs/openapi.yaml

# Regenerate the compose gateway's nginx config from local/routes.py (a test checks they agree).
gateway-conf: $(INSTALLED)
	$(PY) -m local.nginx > deploy/nginx.conf

# Regenerate the AWS SAM template from local/routes.py and scheduled/schedule.py (a test checks).
aws-template: $(INSTALLED)
	$(PY) -m deploy.aws.generate > deploy/aws/template.yaml

# The Lambda functions' code and pinned dependencies (Linux x86_64 wheels) in build/lambda/.
lambda-package: $(INSTALLED)
	$(PY) -m deploy.aws.package build/lambda

# docker-compose.yml run for real, as a user would (not part of `make test`). COMPOSE names the
# compose command: `docker compose` by default; CI uses ../shared/containers/compose.sh.
compose-test: $(INSTALLED)
	$(PY) deploy/compose_test.py

# `make bench NAME=cold_start`
bench: $(INSTALLED)
	$(PY) -m bench $(NAME)

# Run the suite and the system for real, and keep what they printed in docs/evidence/.
evidence: $(INSTALLED)
	$(PY) -m local.evidence

clean:
	rm -rf $(VENV) var
