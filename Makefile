# The two commands for a fresh machine (README): `make run` and `make test`.
# Both build .venv with Python 3.11 when it is missing and install requirements.txt again only
# when that file changes (a stamp file records the last install).

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.requirements-installed
# Extra arguments for `manage.py serve`, e.g. make run ARGS="--host 0.0.0.0 --port 8080 --workers 4"
ARGS ?=
# Options for pytest, e.g. make test PYTEST_ARGS="-x -k serve". The suite runs serially for now:
# pytest-xdist (-n auto) needs every worker to collect the same test ids, and some tests still
# parametrize with uuid4() values, which differ per worker.
PYTEST_ARGS ?=

.PHONY: setup run test lint format messages

setup: $(STAMP)

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): requirements.txt | $(PY)
	$(PY) -m pip install --disable-pip-version-check -q -r requirements.txt
	touch $(STAMP)

run: setup
	$(PY) manage.py serve $(ARGS)

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

test: lint
	$(PY) -m pytest $(PYTEST_ARGS)

format: setup
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# German catalogue (README, Languages): extract the texts again, then compile the .mo that is committed.
messages: setup
	$(PY) manage.py makemessages -l de --ignore ".venv/*" --ignore "var/*" --ignore "tests/*" --ignore "bench/*"
	msgfmt --check-format -o locale/de/LC_MESSAGES/django.mo locale/de/LC_MESSAGES/django.po
