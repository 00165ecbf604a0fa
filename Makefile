# Two commands do all set-up on a bare machine with Python 3.11: `make demo` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
export PYTHONPATH := $(CURDIR):$(CURDIR)/plugins

.PHONY: install demo demo-pro airflow airflow-db-clean test test-fast lint format bench lock clean

install: $(VENV)/.installed

# uv installs the locked set in seconds; pip is the fallback where uv cannot be had.
# Then plugins/exact_online as an editable distribution (pyproject.toml): its provider entry point registers the
# "Exact Online" connection type. --no-deps: the lock alone decides versions (the build itself fetches setuptools).
# Bytecode is compiled here, once (uv does not by default, pip does): with PYTHONDONTWRITEBYTECODE set, as on the test
# machines, every interpreter would otherwise compile Airflow from source again (importing its api-server app: 11 s
# of CPU instead of 5), in each test process, DAG runner and Airflow component. compileall also covers a .venv made
# before this line (it skips what is current).
$(VENV)/.installed: requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check uv==0.13.8 \
	  && $(BIN)/uv pip install -q --python $(BIN)/python --compile-bytecode -r requirements.lock \
	  || $(BIN)/python -m pip install -q --disable-pip-version-check -r requirements.lock
	$(BIN)/uv pip install -q --python $(BIN)/python --no-deps -e . \
	  || $(BIN)/python -m pip install -q --disable-pip-version-check --no-deps -e .
	$(BIN)/python -m compileall -q -j 0 $(VENV)/lib > /dev/null
	touch $@

demo: install
	$(BIN)/python -m include.demo $(DEMO_ARGS)

demo-pro: install
	$(BIN)/python -m include.demo --settings include/demo/settings_pro.json $(DEMO_ARGS)

# The real Airflow (api-server, scheduler, dag-processor, triggerer) on http://127.0.0.1:8080; Ctrl-C stops it.
# AIRFLOW_ARGS="--executor celery --workers 2": on the CeleryExecutor, with a Redis broker and two workers.
airflow: install
	$(BIN)/python -m include.airflow_stack $(AIRFLOW_ARGS)

# Keep the metadata database small: drop Airflow's run history older than KEEP_DAYS (default 30).
airflow-db-clean: install
	$(BIN)/python -m include.airflow_stack --clean-db $(or $(KEEP_DAYS),30)

# Two workers (pytest-xdist), one per core: the deployment tests go to one of them first as one unit (they mostly
# wait for the real scheduler's minutes; tests/conftest.py keeps them together), the other worker takes the other
# tiers meanwhile, file by file, and whichever is free takes the next file. One pytest run, so the last line is
# still its summary of every test. --no-loadscope-reorder: hand the files out in the order tests/conftest.py puts
# them in (longest first), not by their number of tests.
test: install
	$(BIN)/python -m pytest -n 2 --dist loadfile --no-loadscope-reorder --durations=25 $(PYTEST_ARGS)

# The edit-loop tier (under 2 minutes on 2 cores): unit, hook, sandbox, transforms, loader, settings page API, the
# DAG bag. Leaves out the tiers of tests/e2e, tests/reliability, tests/deployment, tests/bench and `slow` tests.
test-fast: install
	$(BIN)/python -m pytest -m "not e2e and not reliability and not deployment and not bench and not slow" \
	  --durations=10 $(PYTEST_ARGS)

# The lint gate (config in pyproject.toml): ruff's rules, ruff's formatting, mypy on plugins/ and
# include/outsmart_import/. All three run, so one look shows every finding; the target fails if any did.
lint: install
	@status=0; \
	for tool in "ruff check --output-format=concise ." "ruff format --check --output-format=concise ." "mypy"; do \
	  echo "$(BIN)/$$tool"; $(BIN)/$$tool || status=1; \
	done; exit $$status

# Rewrite the tree the way `make lint` wants it: ruff's safe fixes, then formatting (a fix can change a line's
# length, so formatting comes last). What is left to fix by hand is listed, and `make lint` still checks it.
format: install
	$(BIN)/ruff check --fix --exit-zero --output-format=concise . && $(BIN)/ruff format .

bench: install
	$(BIN)/python -m bench $(BENCH_ARGS)

# Re-resolve the pinned direct dependencies (requirements.txt) into the full lock file.
lock:
	$(BIN)/uv pip compile --python $(BIN)/python requirements.txt -o requirements.lock

clean:
	rm -rf .demo .pytest_cache
