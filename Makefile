# Nano Studio. `make run` to start it, `make test` to test it; `make help` lists the rest.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000

.DEFAULT_GOAL := help
.PHONY: help install run test fuzz lint typecheck format bench migrate superuser clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  make %-10s %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e ".[dev]"
	touch $@

install: $(VENV)/.installed ## Create .venv and install the project (with test tools)

run: install ## Start web, worker and beat; embedded mode unless DATABASE_URL and REDIS_URL are set
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py collectstatic --noinput --verbosity 0
	@echo ""
	@echo "  Nano Studio is starting at http://127.0.0.1:$(PORT)/"
	@$(BIN)/python manage.py shell -v 0 -c "from django.conf import settings as s; \
	  print('  Production mode: PostgreSQL + Redis.' if s.PRODUCTION_MODE else \
	  '  Embedded mode: SQLite and broker under var/ (no services needed).'); \
	  print(f'  DEBUG is {\"on\" if s.DEBUG else \"off\"}.')"
	@echo "  With DEBUG on, emails (verification links) appear on the console and at http://127.0.0.1:$(PORT)/dev/mailbox/"
	@echo "  Ctrl-C stops web, worker and beat."
	@echo ""
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/honcho start --port $(PORT) --procfile Procfile --env /dev/null

test: install ## Run the whole suite (PostgreSQL + Redis when reachable, else SQLite)
	@# axios (the docs' examples) and axe-core (accessibility), from package-lock.json
	@if command -v npm >/dev/null; then npm ci --silent --no-audit --no-fund; fi
	$(BIN)/python tests/run.py $(ARGS)

fuzz: install ## Schemathesis against the API, 1,000 examples per operation (make test runs 25)
	NANO_FUZZ_EXAMPLES=1000 $(BIN)/python tests/run.py tests/test_schemathesis.py $(ARGS)
	@cat var/fuzz-calls.json

lint: install ## Ruff, django-upgrade, djade, the import contract, hadolint and compose.yaml's validity
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	git ls-files -z '*.py' | xargs -0 $(BIN)/django-upgrade --target-version 5.2
	git ls-files -z 'templates/*.html' | xargs -0 $(BIN)/djade --target-version 5.2 --check
	$(BIN)/lint-imports
	$(BIN)/hadolint Dockerfile
	@# compose.yaml, validated offline (no Docker engine needed) where docker-compose is installed
	@if command -v docker-compose >/dev/null; then \
	  dir=$$(mktemp -d) && cp compose.yaml $$dir/ && touch $$dir/.env \
	  && docker-compose --file $$dir/compose.yaml config --quiet && echo "compose.yaml is valid"; \
	else echo "docker-compose not installed: compose.yaml not validated"; fi

typecheck: install ## mypy with django-stubs: strict for the product, relaxed for tests and bench
	$(BIN)/mypy .

format: install ## Fix what can be fixed: ruff, django-upgrade, djade
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .
	git ls-files -z '*.py' | xargs -0 $(BIN)/django-upgrade --target-version 5.2 || true
	git ls-files -z 'templates/*.html' | xargs -0 $(BIN)/djade --target-version 5.2

bench: install ## Benchmarks under bench/ on PostgreSQL + Redis (make bench ARGS=auth for one)
	@command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk >/dev/null)
	$(BIN)/python bench/run.py $(ARGS)

migrate: install ## Apply database migrations
	$(BIN)/python manage.py migrate

superuser: install ## Create an admin account for /admin/
	$(BIN)/python manage.py createsuperuser

clean: ## Remove .venv and var/ (the embedded database, broker and mailbox)
	rm -rf $(VENV) var
