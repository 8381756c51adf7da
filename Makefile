# GridLoop: `make run` serves the demo on http://127.0.0.1:$(PORT); `make test` runs the whole suite.
PORT ?= 5000
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export FLASK_APP := tracker

.PHONY: run test test-sqlite test-postgresql check install translations browser clean lock

$(STAMP): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c requirements.lock -e '.[test]'
	touch $@

# Pin what is installed now (after a dependency change in pyproject.toml) into requirements.lock.
lock: $(STAMP)
	{ sed -n '1,2p' requirements.lock; $(PY) -m pip freeze --exclude-editable | grep -vi '^gridloop'; } > requirements.lock.new
	mv requirements.lock.new requirements.lock

install: $(STAMP) translations

translations: $(STAMP)
	$(VENV)/bin/pybabel compile --domain messages --directory tracker/translations

# Debian's chromium for the browser tests; Playwright never downloads a browser here.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; }

# The demo's own secret key, made once on this machine (the app refuses the example key in config.toml).
instance/secret_key:
	mkdir -p instance
	umask 077 && $(PYTHON) -c 'import secrets; print(secrets.token_hex(32))' > $@

run: install instance/secret_key
	GRIDLOOP_APP_SECRET_KEY=$$(cat instance/secret_key) $(VENV)/bin/flask demo
	GRIDLOOP_APP_SECRET_KEY=$$(cat instance/secret_key) GRIDLOOP_DEMO_CLOCK_HOOK=true \
	  $(VENV)/bin/flask run --host 127.0.0.1 --port $(PORT)

# The whole suite on the embedded default (SQLite) and on a throwaway PostgreSQL cluster, side by
# side (one pass per core; much of the PostgreSQL pass waits on servers). The PostgreSQL pass also
# runs the multi-process concurrency and fault tests marked `postgres`, and skips the tests marked
# `nodb`: they never touch a database, so they would only run again. The SQLite pass prints as it
# goes; the PostgreSQL pass's report follows, from $(PG_LOG). `make test-sqlite` or
# `make test-postgresql` runs one pass alone.
PG_LOG := instance/test-postgresql.log
SQLITE_PASS := $(PY) -m pytest -m "not postgres"
# Its own Ctrl-C (a background job would ignore it): interrupted, it still stops its cluster.
PG_PASS := env --default-signal=INT GRIDLOOP_TEST_DATABASE=postgresql $(PY) -m pytest -m "not nodb"

test: install browser check
	@mkdir -p instance
	@$(PG_PASS) -p no:cacheprovider > $(PG_LOG) 2>&1 & pg=$$!; \
	  $(SQLITE_PASS); sqlite=$$?; \
	  wait $$pg; postgresql=$$?; \
	  echo; echo "=== PostgreSQL pass ($(PG_LOG)) ==="; cat $(PG_LOG); \
	  [ $$sqlite = 0 ] && [ $$postgresql = 0 ]

test-sqlite: install browser
	$(SQLITE_PASS)

test-postgresql: install browser
	$(PG_PASS)

# Lint and type checks (configured in pyproject.toml), before any test runs.
check: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

clean:
	rm -rf $(VENV) instance
