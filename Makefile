# Two commands do all the set-up on a fresh machine:
#   make run    install, migrate, seed a demo, serve API + admin with worker, beat, Stripe emulator
#   make test   install, lint, check migrations, run the whole suite
#   make requirements-check   requirements.txt alone (a fresh venv) imports the whole service
#   make image-test   build the production image with podman, run web/worker/beat, check them
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
STAMP := $(VENV)/.installed

.PHONY: run test lint bench install migrate services browser check-deploy requirements-check image-test clean

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

install: $(STAMP)

services:
	@scripts/services.sh

browser:
	@scripts/browser.sh

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	DJANGO_SETTINGS_MODULE=config.settings.test $(BIN)/mypy

migrate: install services
	$(PY) manage.py migrate --noinput

test: install services browser
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	DJANGO_SETTINGS_MODULE=config.settings.test $(BIN)/mypy
	DJANGO_SETTINGS_MODULE=config.settings.test $(PY) manage.py makemigrations --check --dry-run
	$(BIN)/pytest

run: migrate
	scripts/run.sh

bench: install services
	$(PY) -m bench

check-deploy: install
	DJANGO_SETTINGS_MODULE=config.settings.production DJANGO_SECRET_KEY=$$($(PY) -c 'import secrets;print(secrets.token_urlsafe(50))') \
	DATABASE_URL=postgres://postgres@127.0.0.1:5432/billing DJANGO_ALLOWED_HOSTS=billing.example.com \
	FIELD_ENCRYPTION_KEYS=$$($(PY) -c 'from cryptography.fernet import Fernet;print(Fernet.generate_key().decode())') \
	$(PY) manage.py check --deploy --fail-level WARNING

requirements-check:
	scripts/requirements_check.sh

image-test: install services browser
	scripts/image_test.sh

clean:
	rm -rf $(VENV) staticfiles .run
