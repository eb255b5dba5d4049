# oauthmail: `make run` sets up everything and serves http://127.0.0.1:8000/admin/; `make test` runs the suite.
# Deferred (?=): looked up when used, so a python3 that `make test` has just installed is found.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install run test test-packages migrate clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

.env: | install
	$(BIN)/python -m oauthmail.bootstrap .env

migrate: install .env
	$(BIN)/python manage.py migrate --noinput

run: migrate
	$(BIN)/python manage.py collectstatic --noinput -v0
	$(BIN)/python manage.py ensure_admin
	$(BIN)/python manage.py runserver 127.0.0.1:8000

# The Debian packages the suite needs (Dovecot, chromium, msmtp ...): installed when missing as root,
# otherwise one line says what to run. See scripts/test-packages.
test-packages:
	@PYTHON="$(PYTHON)" scripts/test-packages

test: test-packages install
	$(BIN)/pytest

clean:
	rm -rf $(VENV) .pytest_cache
