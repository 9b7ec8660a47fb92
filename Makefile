# `make run` starts the broker; `make test` runs every check CI runs. Both install what
# they need into .venv first.
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

$(STAMP): setup.cfg pyproject.toml
	python3 -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

.PHONY: install run test lint bench
install: $(STAMP)

run: $(STAMP)
	$(BIN)/supportbroker serve

lint: $(STAMP)
	$(BIN)/ruff check broker web agent tests bench
	$(BIN)/mypy

# The second pass runs the tests that touch storage again against PostgreSQL (each test in
# a fresh schema); they skip when nothing answers at TEST_DATABASE_URL, except under CI.
# The browser tests run their brokers on SQLite, tests/test_cluster*.py always use
# PostgreSQL and Redis, and tests/test_agent.py, test_agent_windows.py and
# test_agent_wayland.py run in network namespaces of their own
# (loopback only, so no PostgreSQL there): none of them is in the second pass.
# Last, tests/smoke_installed.py builds the wheel, installs it with its dependencies into a
# fresh virtual environment (from PyPI or pip's cache) and walks a journey through that
# `supportbroker serve`: a file the package leaves out fails here, as nowhere else.
TEST_DATABASE_URL ?= postgresql://127.0.0.1/test

test: lint
	$(BIN)/pytest
	BROKER_TEST_DATABASE_URL=$(TEST_DATABASE_URL) $(BIN)/pytest -q -m "not browser" \
		--ignore=tests/test_cluster.py --ignore=tests/test_cluster_rtc.py \
		--ignore=tests/test_cluster_limits.py --ignore=tests/test_cluster_supervision.py \
		--ignore=tests/test_agent.py --ignore=tests/test_agent_windows.py \
		--ignore=tests/test_agent_wayland.py
	$(BIN)/python -m tests.smoke_installed

bench: $(STAMP)
	$(BIN)/python bench/core.py

# `make i18n` re-extracts the _() strings of web/templates (and any in web/, broker/) into
# web/locale/messages.pot, then merges them into every web/locale/<lang>/LC_MESSAGES/messages.po.
# Translate the new or fuzzy entries afterwards; the broker compiles the .po files at start-up.
.PHONY: i18n
i18n: $(STAMP)
	$(BIN)/pybabel extract -F babel.cfg -o web/locale/messages.pot --project=supportbroker \
		--version=0.1.0 --copyright-holder="the supportbroker authors" \
		--add-comments=Translators: --sort-by-file .
	$(BIN)/pybabel update -i web/locale/messages.pot -d web/locale -D messages --previous
