# The two commands for a fresh machine (README): `make run` and `make test`.
# Both build .venv with Python 3.11 when it is missing and install requirements.txt again only
# when that file changes (a stamp file records the last install). Kerberos (requirements-kerberos.txt)
# builds against MIT krb5's headers: setup adds it where krb5-config exists, with a stamp of its own.
# Directory sign-in (requirements-ldap.txt: python-ldap) builds against OpenLDAP's headers the same way:
# setup adds it where ldap.h and sasl/sasl.h exist, with a stamp of its own.
# `make test` first installs the Debian packages the suite needs (a KDC for the Kerberos tests, slapd
# for the directory tests, the headers and compiler for gssapi and python-ldap) when they are missing
# and it runs as root; `make run` never does.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.requirements-installed
KERBEROS_STAMP := $(VENV)/.kerberos-installed
LDAP_STAMP := $(VENV)/.ldap-installed
TEST_DEBS := libkrb5-dev krb5-kdc krb5-admin-server krb5-user gcc $(notdir $(PYTHON))-dev \
	libldap2-dev libsasl2-dev slapd
# Extra arguments for `manage.py serve`, e.g. make run ARGS="--host 0.0.0.0 --port 8080 --workers 4"
ARGS ?=
# Options for pytest, e.g. make test PYTEST_ARGS="-x -k serve". The suite runs on pytest-xdist, one
# worker per CPU; every worker collects the same test ids (no random values in parametrize ids), and
# tests that share a server within a module or folder (the console of tests/api/test_live.py, the one
# of tests/e2e/) run on one worker under --dist loadgroup (TOGETHER in tests/conftest.py); the
# longest tests start first (FIRST there).
# Serially: make test XDIST= (plain `pytest` runs serially too).
XDIST ?= -n auto --dist loadgroup
PYTEST_ARGS ?=

.PHONY: setup run test test-deps lint format messages

# Kerberos only where it builds: MIT krb5's headers (krb5-config), a C compiler and Python's headers,
# looked for when setup runs (test-deps may just have installed them); elsewhere it is left out.
# Directory sign-in likewise, where OpenLDAP's and SASL's headers are.
BUILDS = { command -v cc || command -v gcc; } >/dev/null && $(PY) -c \
	"import os, sys, sysconfig; sys.exit(not os.path.exists(sysconfig.get_paths()['include'] + '/Python.h'))"
setup: $(STAMP)
	@if command -v krb5-config >/dev/null && $(BUILDS); \
	then $(MAKE) --no-print-directory $(KERBEROS_STAMP); fi
	@if [ -f /usr/include/ldap.h ] && [ -f /usr/include/sasl/sasl.h ] && $(BUILDS); \
	then $(MAKE) --no-print-directory $(LDAP_STAMP); fi

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): requirements.txt | $(PY)
	$(PY) -m pip install --disable-pip-version-check -q -r requirements.txt
	touch $(STAMP)

$(KERBEROS_STAMP): requirements-kerberos.txt $(STAMP)
	$(PY) -m pip install --disable-pip-version-check -q -r requirements-kerberos.txt
	touch $(KERBEROS_STAMP)

$(LDAP_STAMP): requirements-ldap.txt $(STAMP)
	$(PY) -m pip install --disable-pip-version-check -q -r requirements-ldap.txt
	touch $(LDAP_STAMP)

# The Debian packages of the Kerberos and directory tests, installed once when missing (root only;
# otherwise the tests that need them skip, and fail under REQUIRE_SERVICES=1). slapd's package asks
# nothing (noninteractive); the tests start their own slapd, never the system's.
test-deps:
	@missing=""; for pkg in $(TEST_DEBS); do \
		dpkg-query -W -f='$${Status}' $$pkg 2>/dev/null | grep -q "ok installed" || missing="$$missing $$pkg"; \
	done; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			echo "Installing$$missing"; \
			apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing; \
		else \
			echo "Missing Debian packages for the Kerberos and directory tests:$$missing (apt-get install them as root)" >&2; \
		fi; \
	fi

# The single sign-on tests' OpenID provider (tests/access/oidc_idp): oidc-provider from the npm
# registry, at package-lock.json's versions, installed again when the lock file changes. Without
# Node.js those tests skip (and fail under REQUIRE_SERVICES=1).
IDP := tests/access/oidc_idp
$(IDP)/node_modules/.package-lock.json: $(IDP)/package-lock.json
	@if command -v npm >/dev/null; then npm ci --prefix $(IDP) --no-audit --no-fund --loglevel=error; \
	else echo "Node.js and npm are missing: the single sign-on tests need them" >&2; fi

run: setup
	$(PY) manage.py serve $(ARGS)

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

test: test-deps $(IDP)/node_modules/.package-lock.json
	$(MAKE) --no-print-directory lint
	$(PY) -m pytest $(XDIST) $(PYTEST_ARGS)

format: setup
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# German catalogue (README, Languages): extract the texts again, then compile the .mo that is committed.
messages: setup
	$(PY) manage.py makemessages -l de --ignore ".venv/*" --ignore "var/*" --ignore "tests/*" --ignore "bench/*"
	msgfmt --check-format -o locale/de/LC_MESSAGES/django.mo locale/de/LC_MESSAGES/django.po
