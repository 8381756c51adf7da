# GridLoop: `make run` serves the demo on http://127.0.0.1:$(PORT); `make test` runs the whole suite.
PORT ?= 5000
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export FLASK_APP := tracker

.PHONY: run test install translations browser clean lock

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

# The whole suite on the embedded default (SQLite), then on a throwaway PostgreSQL cluster
# (which also runs the multi-process concurrency and fault tests marked `postgres`, and skips
# the tests marked `nodb`: they never touch a database, so they would only run again).
test: install browser
	$(PY) -m pytest -m "not postgres"
	GRIDLOOP_TEST_DATABASE=postgresql $(PY) -m pytest -m "not nodb"

clean:
	rm -rf $(VENV) instance
