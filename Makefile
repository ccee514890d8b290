# Two commands on a fresh machine: `make run` and `make test`. Everything they need is installed here.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml constraints.txt | sha1sum | cut -c1-12)
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: install system-deps run test test-fast lint bench clean lock

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[test,lint]'
	rm -f $(VENV)/.installed-*
	touch $@

# Debian packages the tests use as real peers: PostgreSQL server binaries (the embedded cluster),
# a real Prometheus Alertmanager, wrk for throughput figures, and Chromium for the browser tests.
system-deps:
	@missing=""; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null || missing="$$missing postgresql"; \
	command -v prometheus-alertmanager >/dev/null || missing="$$missing prometheus-alertmanager"; \
	command -v wrk >/dev/null || missing="$$missing wrk"; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi

# No Debian packages needed to run: without the machine's PostgreSQL binaries, the pgserver package
# (installed with the rest) serves the embedded database.
run: install
	$(BIN)/tocsin up --config examples/tocsin.yaml

test: install system-deps
	$(BIN)/pytest

test-fast: install
	$(BIN)/pytest -m "not e2e"

# mypy cannot follow setuptools' package-dir mapping, so it checks a tree of links laid out by import name.
lint: install
	$(BIN)/ruff check cli libs services tests bench
	rm -rf build/typecheck && mkdir -p build/typecheck/tocsin
	for f in cli/*.py; do ln -s ../../../$$f build/typecheck/tocsin/; done
	ln -s ../../../libs/events build/typecheck/tocsin/events
	for s in intake router scheduler notifier api; do ln -s ../../../services/$$s build/typecheck/tocsin/$$s; done
	cd build/typecheck && ../../$(BIN)/mypy --config-file ../../pyproject.toml -p tocsin

bench: install system-deps
	$(BIN)/python bench/e2e_latency.py
	$(BIN)/python bench/intake.py
	$(BIN)/python bench/router.py
	$(BIN)/python bench/schedule.py
	$(BIN)/python bench/timers.py
	$(BIN)/python bench/deliveries.py

# Refresh the pins after changing dependencies in pyproject.toml.
lock:
	rm -rf /tmp/tocsin-lock && $(PYTHON) -m venv /tmp/tocsin-lock
	/tmp/tocsin-lock/bin/pip install --quiet '.[test,lint]'
	/tmp/tocsin-lock/bin/pip freeze --exclude tocsin > constraints.txt

clean:
	rm -rf $(VENV) .tocsin .pytest_cache
