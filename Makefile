# IAPT Pathways: every target sets up what it needs, starting from Python 3.11-3.13 on a fresh clone.
#
#   make run        venv, then execute every notebook into outputs/ (notebooks, html book, tables, run.json)
#   make test       venv + chromium, then ruff, pytest tests/ and nbval over the committed notebooks
#   make lab        JupyterLab on the notebooks, with the project's kernel
#   make data       rebuild the default synthetic cohort in data/synthetic/ (byte for byte)
#   make twins      bring every notebook and its text twin (notebooks/NN_name.py) back in step
#   make notebooks  re-execute the committed notebooks in place (after a change that alters their outputs)
#   make exercises  generate student notebooks in notebooks/exercises/ (git-ignored; solutions are the source)
#   make bench      run the benchmarks (make bench-run: only the whole set, both routes side by side)
#   make lock       re-resolve the universal lock constraints.txt from requirements.txt (uv)
#   make clean      remove generated outputs (keeps .venv; `make distclean` removes it too)
#
# Variables you may override: PYTHON (interpreter for the venv; default: the newest Python 3.13, 3.12 or
# 3.11 on the PATH), VENV (its location), RUN_ARGS (extra arguments for `python -m helpers.run`, e.g. RUN_ARGS="-p n_referrals=20000").

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-builtin-rules

# Supported: 3.11 (from 3.11.2, Debian 12's) to 3.13; 3.14 is checked for installability only.
SUPPORTED := 3.13 3.12 3.11
PYTHON_FLOOR := 3.11.2
UV_VERSION := 0.13.9
# The newest supported interpreter that actually runs (a pyenv shim for an inactive version does not).
PYTHON ?= $(shell for v in $(SUPPORTED) 3; do p=$$(command -v python$$v 2>/dev/null) || continue; \
  "$$p" -c 'import sys; sys.exit(not (3, 11) <= sys.version_info[:2] <= (3, 13))' 2>/dev/null && { echo "$$p"; break; }; done)
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.iapt-installed
LOCK_VENV := .lock-venv
RUN_ARGS ?=
CHROMIUM := /usr/bin/chromium

# Prefer the venv's own kernelspec (ipykernel ships `python3` into $(VENV)/share/jupyter/kernels) over any
# user- or system-wide one, so papermill/nbval/nbclient run kernels with the venv's interpreter.
export JUPYTER_PREFER_ENV_PATH := 1
export PIP_DISABLE_PIP_VERSION_CHECK := 1
# debugpy (pulled in by ipykernel) warns on every kernel start under frozen modules; harmless noise.
export PYDEVD_DISABLE_FILE_VALIDATION := 1

.PHONY: help venv spark run test test-python installable lint pytest nbval browser lab data twins notebooks exercises bench bench-run lock clean distclean

help:
	@sed -n '2,/^$$/p' Makefile | sed 's/^# \{0,1\}//'

## venv: (re)created when missing or when requirements.txt / constraints.txt / pyproject.toml / the version change.
venv: $(STAMP)

$(STAMP): requirements.txt constraints.txt pyproject.toml helpers/__init__.py
	@test -n "$(PYTHON)" || { echo "error: no Python 3.11, 3.12 or 3.13 found on the PATH. Install one" \
	  "(Debian/Ubuntu: sudo apt install python3 python3-venv; or python.org), or name it: make PYTHON=/path/to/python3.12" >&2; exit 1; }
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] >= (3, 11) else 1)' 2>/dev/null || { \
	  echo "error: PYTHON=$(PYTHON) is not Python 3.11 or newer ($$($(PYTHON) --version 2>&1 | head -1)); install 3.11-3.13 or set PYTHON=" >&2; exit 1; }
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] <= (3, 13) else 1)' || \
	  echo "note: $$($(PYTHON) --version) is newer than the tested 3.11-3.13; the lock installs on it, the tests are not run on it in CI" >&2
	@echo "Using $$($(PYTHON) --version) at $$($(PYTHON) -c 'import sys; print(sys.executable)') for $(VENV)"
	@# A changed pin set gets a clean venv: upgrading in place would leave removed packages behind.
	@$(PYTHON) -m venv --clear $(VENV) || { echo "error: $(PYTHON) cannot create a virtual environment;" \
	  "on Debian/Ubuntu install the venv module: sudo apt install python3-venv (or python3.X-venv)" >&2; exit 1; }
	$(PY) -m pip install --quiet -r requirements.txt -c constraints.txt
	$(PY) -m pip install --quiet --no-deps -e .
	$(PY) -m pip check
	@# The notebooks name kernel `python3`: it must resolve to this venv's interpreter.
	$(PY) -c 'import sys; from jupyter_client.manager import KernelManager; \
	  cmd = KernelManager(kernel_name="python3").format_kernel_cmd(); \
	  assert cmd[0] == sys.executable, f"kernel python3 runs {cmd[0]}, not {sys.executable}"; \
	  print("kernel python3 ->", cmd[0])'
	touch $(STAMP)

## spark: the optional Spark engine (PySpark, needs Java 17+) for the tests; `make run` never installs it.
SPARK_STAMP := $(VENV)/.iapt-spark
spark: $(SPARK_STAMP)

$(SPARK_STAMP): $(STAMP) requirements-spark.txt
	$(PY) -m pip install --quiet -r requirements-spark.txt -c constraints.txt
	touch $(SPARK_STAMP)

## run: everything into outputs/ (pass RUN_ARGS="-p name=value ..." for other parameters).
run: venv
	$(PY) -m helpers.run $(RUN_ARGS)

## test: lint and both test suites run even if one fails, so one CI run shows every failure.
test: venv browser
	@status=0; \
	$(MAKE) --no-print-directory lint || status=1; \
	$(MAKE) --no-print-directory pytest || status=1; \
	$(MAKE) --no-print-directory nbval || status=1; \
	exit $$status

lint: venv
	$(PY) -m ruff check helpers tests benchmarks

# IAPT_REQUIRE_SPARK: the Spark tests fail instead of skipping if PySpark is missing.
# TEST_WORKERS pytest-xdist workers (default 2, the cores CI has): most of the suite's time is spent waiting
# on notebook kernels and child runs, so a second worker keeps the second core busy. --dist loadgroup keeps
# every test that shares an expensive fixture (a real run, a Spark session, a module's fitted data) on one
# worker, so each is still built once (tests/conftest.py); each worker has its own temporary folders.
# TEST_WORKERS=0 runs the suite in this process, one test at a time, as before.
TEST_WORKERS ?= 2
pytest: venv spark
	IAPT_REQUIRE_SPARK=1 $(PY) -m pytest -n $(TEST_WORKERS) --dist loadgroup tests

# nbval re-executes the committed notebooks and compares the outputs of cells tagged `nbval-check-output`
# (lax mode). notebooks/exercises/ is excluded: the student versions are generated (git-ignored) and their
# answer cells are empty on purpose; tests/test_exercises.py builds them fresh and executes them instead.
# Every notebook is re-executed; the results they share (the analysis data, the fits) are computed by the first
# that needs them and read back by the rest from a cache folder made for this pass (helpers.cache), and BLAS
# keeps to one thread (its spinning threads would only contend with the kernel on a busy 2-core machine).
# Notebooks run TEST_WORKERS at a time, each whole on one worker (--dist loadscope: a notebook's cells share
# one kernel, in order); the cache's per-entry lock makes a second notebook wait for a result the first is
# computing rather than compute it again.
nbval: venv
	cache=$$(mktemp -d); trap 'rm -rf "$$cache"' EXIT; \
	IAPT_CACHE_DIR="$$cache" OPENBLAS_NUM_THREADS=$${OPENBLAS_NUM_THREADS:-1} \
	$(PY) -m pytest -p no:cacheprovider -n $(TEST_WORKERS) --dist loadscope --nbval-lax --nbval-current-env \
	  --nbval-sanitize-with tests/nbval_sanitize.cfg --ignore=notebooks/exercises notebooks/

## browser: headless Chromium for tests/test_book_browser.py (Debian package; no-op when present).
browser:
	@if [ -x $(CHROMIUM) ]; then \
	  :; \
	elif [ "$$(id -u)" = 0 ]; then \
	  echo "installing chromium (apt-get)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	else \
	  echo "warning: $(CHROMIUM) is missing and we are not root: run 'sudo make browser'" \
	       "(tests/test_book_browser.py will fail)" >&2; \
	fi

## test-python: on another interpreter (PYTHON=... required), in its own venv .venv-X.Y: a fresh install, the
## unit tests (everything but the whole-run, browser and Spark tests, which `make test` runs) and one notebook under
## nbval. CI runs it for every supported Python beside the one `make test` used.
PY_TAG = $(shell $(PYTHON) -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])' 2>/dev/null)
test-python:
	@test -n "$(PY_TAG)" || { echo "error: test-python needs PYTHON=/path/to/python3.X (got '$(PYTHON)')" >&2; exit 1; }
	rm -rf .venv-$(PY_TAG)
	$(MAKE) --no-print-directory venv VENV=.venv-$(PY_TAG) PYTHON=$(PYTHON)
	.venv-$(PY_TAG)/bin/python -m pytest -q -p no:cacheprovider -m "not whole_run" --ignore=tests/test_spark.py tests
	.venv-$(PY_TAG)/bin/python -m pytest -q -p no:cacheprovider --nbval-lax --nbval-current-env \
	  --nbval-sanitize-with tests/nbval_sanitize.cfg notebooks/09_treatment.ipynb
	rm -rf .venv-$(PY_TAG)

## installable: the lock resolves, as wheels, for a Python we do not test on (default 3.14); needs the registry.
INSTALLABLE ?= 3.14
installable: venv
	$(PY) -m pip install --quiet --dry-run --ignore-installed --only-binary=:all: --python-version $(INSTALLABLE) \
	  --target "$$(mktemp -d)" -r requirements.txt -c constraints.txt
	@echo "the lock installs on Python $(INSTALLABLE) (binary wheels for every package)"

## lab: JupyterLab on the notebooks, with this project's kernel (the venv's python3).
lab: venv
	$(VENV)/bin/jupyter lab notebooks/

data: venv
	$(PY) -m helpers.cohort --default

twins: venv
	$(PY) -m helpers.twins

## notebooks: twins, then re-execute every committed notebook in place (refreshes the outputs nbval compares), then twins.
notebooks: venv
	@# Twins first: a .py twin edited (or reverted) since its .ipynb was saved must reach the .ipynb before it runs,
	@# or the run would save the stale cells and the twin step after it would copy them back over the .py.
	$(PY) -m helpers.twins
	cd notebooks && for nb in [0-9][0-9]_*.ipynb; do \
	  echo "executing $$nb"; ../$(PY) -m papermill --no-progress-bar -k python3 "$$nb" "$$nb" || exit 1; done
	$(PY) -m helpers.twins

exercises: venv
	$(PY) -m helpers.exercises

bench: venv
	$(PY) benchmarks/run_all.py

## bench-run: only the whole set, sequential and uncached beside shared and parallel (benchmarks/bench_run.py).
bench-run: venv
	$(PY) benchmarks/bench_run.py --out benchmarks/results/run.json

## lock: re-resolve constraints.txt, one universal lock for every supported Python and platform, with uv
## (from PyPI, into a throwaway venv). Existing pins are kept where they still satisfy requirements.txt;
## --fork-strategy fewest keeps one version of a package across Pythons wherever one exists, and the floor
## 3.11.2 is Debian 12's python3.
lock:
	rm -rf $(LOCK_VENV)
	$(PYTHON) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/python -m pip install --quiet uv==$(UV_VERSION)
	$(LOCK_VENV)/bin/uv pip compile requirements.txt requirements-spark.txt --universal --fork-strategy fewest \
	  --python-version $(PYTHON_FLOOR) --custom-compile-command "make lock" --quiet -o constraints.txt
	rm -rf $(LOCK_VENV)

clean:
	rm -rf outputs notebooks/exercises .pytest_cache build dist *.egg-info $(LOCK_VENV)
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +
	find . -path ./$(VENV) -prune -o -name .ipynb_checkpoints -type d -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV)
