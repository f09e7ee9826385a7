# Two commands for a newcomer: `make serve` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: serve test check venv deps system-deps node-deps bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

venv: $(PY)
	$(PY) -m pip install -q -e '.[test]'

serve: venv
	$(VENV)/bin/cometql serve $(ARGS)

# System packages the tests drive for real (mysql CLI, PHP mysqli/PDO, Node, headless Chromium, redis-server,
# nginx in front of the server, systemd-analyze for the unit, ip for the docs' commands in a network namespace).
system-deps:
	@missing=""; \
	command -v mysql >/dev/null || missing="$$missing mariadb-client"; \
	command -v php >/dev/null || missing="$$missing php-cli"; \
	php -m 2>/dev/null | grep -qi '^mysqli$$' || missing="$$missing php-mysql"; \
	command -v node >/dev/null || missing="$$missing nodejs"; \
	command -v npm >/dev/null || missing="$$missing npm"; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	command -v chromedriver >/dev/null || missing="$$missing chromium-driver"; \
	command -v redis-server >/dev/null || missing="$$missing redis-server"; \
	[ -x /usr/sbin/nginx ] || command -v nginx >/dev/null || missing="$$missing nginx"; \
	command -v systemd-analyze >/dev/null || missing="$$missing systemd"; \
	[ -x /usr/sbin/ip ] || command -v ip >/dev/null || missing="$$missing iproute2"; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

node-deps:
	cd tests/clients && [ -d node_modules/mysql ] || npm install --silent --no-audit --no-fund

deps: venv system-deps node-deps

# Types (pyproject.toml [tool.mypy]: strict for hub, sql, store, cluster) and lint; the package graph is
# tests/test_layering.py.
check: venv
	$(PY) -m mypy cometql
	$(PY) -m ruff check cometql tests bench

test: deps check
	$(PY) -m pytest -q $(PYTEST_ARGS)

bench: venv
	$(VENV)/bin/cometql bench --write-docs docs/performance.md

clean:
	rm -rf $(VENV) data .pytest_cache tests/clients/node_modules
