# Entry points: `make demo`, `make test` (everything), `make test-fast` (the pure tier:
# no PostgreSQL, no Airflow start-up), `make wheel`. The virtual environment is rebuilt
# only when a requirements file or pyproject.toml changes (a stamp file holds their hash):
# requirements.txt is the runtime lock, requirements-test.txt the test/demo/build tools.
PY ?= python3.11
VENV := .venv
REQ_HASH := $(shell sha256sum requirements.txt requirements-test.txt pyproject.toml | sha256sum | cut -c1-16)
STAMP := $(VENV)/.installed-$(REQ_HASH)
export AIRFLOW__CORE__LOAD_EXAMPLES := False

.PHONY: venv demo demo-ui test test-fast wheel lint bench bench-ui bench-scheduler clean browser

venv: $(STAMP)

$(STAMP): requirements.txt requirements-test.txt pyproject.toml
	@command -v $(PY) >/dev/null 2>&1 || { echo "need $(PY) on PATH"; exit 1; }
	rm -rf $(VENV)
	$(PY) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip uv
	$(VENV)/bin/uv pip install -q --python $(VENV)/bin/python -r requirements.txt -r requirements-test.txt
	$(VENV)/bin/uv pip install -q --python $(VENV)/bin/python --no-deps -e .
	touch $(STAMP)

demo: venv
	$(VENV)/bin/bds demo

demo-ui: venv
	$(VENV)/bin/bds demo --ui

# Headless Chromium for tests/test_billing_browser.py: Debian's packages, installed when
# missing and we are root (CI); otherwise that test skips and says why.
browser:
	@if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; \
	  else echo "chromium/chromium-driver missing (not root): the browser test will skip"; fi; \
	fi

test: venv browser
	$(VENV)/bin/ruff check .
	$(VENV)/bin/python -m pytest -n 2 --dist loadgroup -q $(PYTEST_ARGS)

# Tests that need neither PostgreSQL nor Airflow's metadata DB (marker `pure`).
test-fast: venv
	$(VENV)/bin/python -m pytest -m pure -n 2 -q $(PYTEST_ARGS)

wheel: venv
	$(VENV)/bin/python -m build --wheel --installer uv --outdir dist .

lint: venv
	$(VENV)/bin/ruff check .

# Sessions per day of the benchmarked tenant, comma-separated scales; the full run of
# BENCHMARKS.md is `make bench BENCH_SCALE=100000,1000000,5000000`.
BENCH_SCALE ?= 100000
bench: venv
	$(VENV)/bin/python -m bench.run --sessions $(BENCH_SCALE) $(BENCH_ARGS)

# The Billing page's cost on 1000 tenants x 365 days of generated stored results.
bench-ui: venv
	$(VENV)/bin/python -m bench.billing_page --out BENCHMARKS.md $(BENCH_UI_ARGS)

# Small tenants' days through the real scheduler (bench/scheduler.py). Default: 8 tenants
# x 2 days, about 6 minutes; more: make bench-scheduler BENCH_SCHEDULER_ARGS="--tenants 30 --days 3"
BENCH_SCHEDULER_ARGS ?=
bench-scheduler: venv
	$(VENV)/bin/python -m bench.scheduler $(BENCH_SCHEDULER_ARGS)

clean:
	rm -rf $(VENV) .bds dist build *.egg-info
