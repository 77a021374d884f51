# Two commands on a fresh machine with Python 3.11+: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: venv browser ops-tools demo lint test test-core test-scale bench bench-scale server worker broker test-ibkr-live check-config compose-desks certs env clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is needed, found " + sys.version.split()[0]'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test]'
	@touch $(STAMP)

venv: $(STAMP)

demo: venv          ## the main job: every scenario against an embedded Temporal, with UI links
	$(PY) -m cli demo $(DEMO_ARGS)

# The report test opens the HTML report in Debian's chromium (no browser download).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing Debian's chromium for the report test"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "the report test needs chromium: sudo apt-get install chromium" >&2; fi; }

# Static gates, in this order, stopping at the first that fails (config in pyproject.toml).
lint: venv          ## ruff check, ruff format --check, mypy (strict on domain/ and protocol/)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy .

# The operations tests run Debian's nginx (stream module: the TLS proxy that verifies client
# certificates in front of the dev server) and prometheus/promtool (the stack's scrape config).
OPS_TOOLS := /usr/sbin/nginx /usr/lib/nginx/modules/ngx_stream_module.so /usr/bin/prometheus /usr/bin/promtool
ops-tools:
	@missing=; for f in $(OPS_TOOLS); do [ -e $$f ] || missing=1; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing Debian's nginx (stream module) and prometheus for the operations tests"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nginx libnginx-mod-stream prometheus >/dev/null; \
	  else echo "the operations tests need: sudo apt-get install nginx libnginx-mod-stream prometheus" >&2; fi; fi

# The suite in TEST_PROCESSES pytest processes (pytest-xdist), each with its own dev server and
# worker: most of a test's time is spent waiting on the server, workers and time-skipped timers.
TEST_PROCESSES ?= 2
test: venv browser ops-tools  ## the whole suite against a real Temporal dev server
	$(PY) -m pytest -n $(TEST_PROCESSES) --dist loadgroup $(PYTEST_ARGS)

test-core: venv     ## the pure core in seconds, no Temporal server (the modules tests/core.py lists)
	$(PY) -m pytest -m core $(PYTEST_ARGS)

test-scale: venv    ## a full day at scale 1.0 (real trade counts), 3,000 open orders on one account, and the soak: a week of 5 sessions, 2,500 desk orders, twice (through worker kills and a server restart)
	$(PY) -m pytest tests_scale -n $(TEST_PROCESSES) -s $(PYTEST_ARGS)

bench: venv         ## benchmarks, each beside its baseline from the same run
	$(PY) -m bench

bench-scale: venv   ## the cost curve: day at 50/200/1,000 positions, bursts of 100/500/2,000 orders
	$(PY) -m bench.scale $(SCALE_ARGS)

server: venv        ## the embedded Temporal dev server on TEMPORAL_ADDRESS (UI on port + 1000)
	$(PY) -m worker.server

worker: venv        ## a worker against TEMPORAL_ADDRESS / TEMPORAL_NAMESPACE
	$(PY) -m worker

broker: venv        ## the IBKR gateway: TWS / IB Gateway on IB_HOST:IB_PORT <-> Temporal, activities on risk-rig-ibkr
	$(PY) -m worker --broker ibkr

test-ibkr-live: venv  ## one tiny far-from-market order on an IB *paper* account: acknowledged, then canceled
	$(PY) -m pytest tests_live/test_ibkr_paper.py -s $(PYTEST_ARGS)

certs:              ## local CA and certificates for the secure profile: .certs/ (CA key in .certs-ca/)
	sh deploy/certs/make-certs.sh .certs .certs-ca

# After every change to config/desks.yaml (tests/test_compose.py fails until this ran).
compose-desks: venv  ## deploy/compose/desks.list: the desks compose's setup job provisions, from config/desks.yaml
	$(PY) -m desk.provision deploy/compose/desks.list

env:                ## .env for docker compose: random secrets and the build id (never committed)
	sh deploy/compose/make-env.sh .env

check-config: venv
	$(PY) -m cli check-config

clean:
	rm -rf $(VENV) .state reports .pytest_cache .hypothesis .mypy_cache .ruff_cache
