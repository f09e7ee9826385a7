# Two commands for a newcomer: `make serve` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: serve test check venv test-venv deps build-deps system-deps node-deps bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

venv: $(PY)
	$(PY) -m pip install -q -e .

# The test extras: drivers (mysqlclient compiles: build-deps), pytest, mypy, ruff.
test-venv: $(PY) build-deps
	$(PY) -m pip install -q -e '.[test]'

# What `pip install mysqlclient` (a test extra) compiles against: a C compiler, Python's headers, libmariadb-dev.
build-deps:
	@missing=""; \
	command -v cc >/dev/null || missing="$$missing gcc"; \
	command -v pkg-config >/dev/null || missing="$$missing pkg-config"; \
	command -v mariadb_config >/dev/null || missing="$$missing libmariadb-dev"; \
	$(PYTHON) -c 'import os, sys, sysconfig; sys.exit(not os.path.exists(sysconfig.get_path("include") + "/Python.h"))' \
	  || missing="$$missing python3-dev"; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

serve: venv
	$(VENV)/bin/cometql serve $(ARGS)

# System packages the tests drive for real (mysql CLI, PHP mysqli/PDO, Node, headless Chromium, redis-server,
# nginx in front of the server, systemd-analyze for the unit, ip for the docs' commands in a network namespace),
# the drivers of other languages (Java's MariaDB Connector/J with gson, Go's go-sql-driver, Ruby's mysql2,
# Perl's DBD::MariaDB and DBD::mysql).
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
	command -v javac >/dev/null || missing="$$missing default-jdk-headless"; \
	[ -f /usr/share/java/mariadb-java-client.jar ] || missing="$$missing libmariadb-java"; \
	[ -f /usr/share/java/gson.jar ] || missing="$$missing libgoogle-gson-java"; \
	command -v go >/dev/null || missing="$$missing golang-go"; \
	[ -d /usr/share/gocode/src/github.com/go-sql-driver/mysql ] || missing="$$missing golang-github-go-sql-driver-mysql-dev"; \
	ruby -e 'require "mysql2"' 2>/dev/null || missing="$$missing ruby-mysql2"; \
	perl -MDBD::MariaDB -e1 2>/dev/null || missing="$$missing libdbd-mariadb-perl"; \
	perl -MDBD::mysql -e1 2>/dev/null || missing="$$missing libdbd-mysql-perl"; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

node-deps:
	cd tests/clients && [ -d node_modules/mysql ] && [ -d node_modules/mysql2 ] || npm install --silent --no-audit --no-fund

deps: test-venv system-deps node-deps

# Types (pyproject.toml [tool.mypy]: strict for hub, sql, store, cluster) and lint; the package graph is
# tests/test_layering.py.
check: test-venv
	$(PY) -m mypy cometql
	$(PY) -m ruff check cometql tests bench

test: deps check
	$(PY) -m pytest -q $(PYTEST_ARGS)

bench: venv
	$(VENV)/bin/cometql bench --write-docs docs/performance.md

clean:
	rm -rf $(VENV) data .pytest_cache tests/clients/node_modules
