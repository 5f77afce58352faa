# Conveyor's entry points. `make demo` and `make test` set everything up themselves, idempotently:
# the venv and pinned Python packages (requirements.lock), the JVM jars (mvn, into .jars/).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: help setup jars tools demo test check lint docs stop status lock clean compose-config

help:
	@echo "make demo   - install everything, start the embedded stack, run the pipeline end to end"
	@echo "make test   - install everything, lint, type-check and run every test"
	@echo "make check  - lint, type-check, the unit tests and the pure-Spark tier (no servers): the inner loop"
	@echo "make docs   - build the documentation site into site/ (reference pages generated from the code)"
	@echo "make stop   - stop the embedded stack (data is kept; 'conveyor stack up --fresh' wipes it)"

setup: $(STAMP) jars tools

# Debian packages the tests use: kcat (an independent Kafka client), chromium (the browser
# test of the Conveyor page, driven by Playwright) and postgresql (the `stack up --with cdc`
# source database). Installed only when missing: each entry is check:package, the check a
# command on PATH or a file pattern (Debian keeps Postgres' programs off PATH).
DEBIAN_TOOLS := kcat:kcat chromium:chromium /usr/lib/postgresql/*/bin/initdb:postgresql
tools:
	@missing=""; for pair in $(DEBIAN_TOOLS); do \
	  check=$${pair%%:*}; \
	  case $$check in \
	    /*) ls $$check >/dev/null 2>&1 ;; \
	    *) command -v $$check >/dev/null 2>&1 ;; \
	  esac || missing="$$missing $${pair#*:}"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if ! command -v apt-get >/dev/null 2>&1; then \
	    echo "missing:$$missing and no apt-get: install them to run every test"; exit 1; \
	  fi; \
	  sudo=$$(test "$$(id -u)" -eq 0 || echo sudo); \
	  echo "installing$$missing with apt-get"; \
	  $$sudo apt-get update -qq >/dev/null && \
	  $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

$(STAMP): pyproject.toml requirements.lock
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python >= 3.11 needed"'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements.lock
	$(BIN)/python -m pip install -q --no-deps -e .
	@touch $@

jars: $(STAMP)
	$(BIN)/conveyor jars

demo: setup
	$(BIN)/conveyor demo

lint: $(STAMP)
	$(BIN)/conveyor render-config --target compose --out docker/config --check
	$(BIN)/ruff check src tests dags jobs plugins benchmarks docs
	$(BIN)/ruff format --check src tests dags jobs plugins benchmarks docs
	$(BIN)/mypy

# The documentation site (mkdocs-material); the reference pages are generated from the code at
# build time (docs/gen_reference.py). `make check` builds it with --strict: a broken link or
# anchor, or a setting, catalog key or ledger column without a description, fails it.
MKDOCS := NO_MKDOCS_2_WARNING=1 DISABLE_MKDOCS_2_WARNING=true $(BIN)/mkdocs
docs: $(STAMP)
	$(MKDOCS) build --quiet

# Unit tests (no JVM, no servers) first, then the pure-Spark tier (one local SparkSession over
# local files): a typo stops the run in seconds, a logic slip in a minute or two, not after the
# stack tests.
check: lint jars
	$(MKDOCS) build --quiet --strict
	$(BIN)/pytest -q -x --durations=5 tests/unit tests/spark

# Each stack tier is its own pytest run with its own stack, one at a time: the single-node one,
# the secured one (SASL_SSL Kafka with ACLs, HDFS permissions), then the replicated one (three
# brokers, three DataNodes) for the fault tests.
test: setup check
	$(BIN)/pytest --durations=25 tests/integration
	$(BIN)/pytest --durations=10 tests/secure
	$(BIN)/pytest --durations=10 tests/faults

# Re-render docker/config from the templates the local stack uses (commit the result).
compose-config: $(STAMP)
	$(BIN)/conveyor render-config --target compose --out docker/config

stop:
	@test -x $(BIN)/conveyor && $(BIN)/conveyor stack down || echo "nothing to stop"

status:
	$(BIN)/conveyor stack status

# Refresh the lock from the current venv (after changing pyproject.toml deliberately).
lock: $(STAMP)
	{ sed -n '1,3p' requirements.lock; $(BIN)/python -m pip freeze --exclude-editable; } > requirements.lock.new
	mv requirements.lock.new requirements.lock

clean: stop
	rm -rf $(VENV) .jars .conveyor site
