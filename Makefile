# IAPT Pathways: every target sets up what it needs, starting from python3.11 + pip on a fresh clone.
#
#   make run        venv, then execute every notebook into outputs/ (notebooks, html book, tables, run.json)
#   make test       venv + chromium, then pytest tests/ and nbval over the committed notebooks
#   make data       rebuild the default synthetic cohort in data/synthetic/ (byte for byte)
#   make exercises  generate student notebooks in notebooks/exercises/ (git-ignored; solutions are the source)
#   make bench      run the benchmarks
#   make lock       re-resolve constraints.txt from requirements.txt in a clean throwaway venv
#   make clean      remove generated outputs (keeps .venv; `make distclean` removes it too)
#
# Variables you may override: PYTHON (interpreter used to create the venv), VENV (its location),
# RUN_ARGS (extra arguments for `python -m helpers.run`, e.g. RUN_ARGS="-p n_referrals=20000").

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-builtin-rules

PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3 2>/dev/null)
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

.PHONY: help venv spark run test pytest nbval browser data exercises bench lock clean distclean

help:
	@sed -n '2,13p' Makefile | sed 's/^# \{0,1\}//'

## venv: (re)created when missing or when requirements.txt / constraints.txt / pyproject.toml change.
venv: $(STAMP)

$(STAMP): requirements.txt constraints.txt pyproject.toml
	@test -n "$(PYTHON)" || { echo "error: no python3.11 or python3 on PATH" >&2; exit 1; }
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else 1)' || { \
	  echo "error: $(PYTHON) is Python $$($(PYTHON) -c 'import platform; print(platform.python_version())'); this project needs 3.11 (set PYTHON=/path/to/python3.11)" >&2; exit 1; }
	@# A changed pin set gets a clean venv: upgrading in place would leave removed packages behind.
	$(PYTHON) -m venv --clear $(VENV)
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

## test: both test suites run even if the first fails, so one CI run shows every failure.
test: venv browser
	@status=0; \
	$(MAKE) --no-print-directory pytest || status=1; \
	$(MAKE) --no-print-directory nbval || status=1; \
	exit $$status

# IAPT_REQUIRE_SPARK: the Spark tests fail instead of skipping if PySpark is missing.
pytest: venv spark
	IAPT_REQUIRE_SPARK=1 $(PY) -m pytest tests

# nbval re-executes the committed notebooks and compares the outputs of cells tagged `nbval-check-output`
# (lax mode). notebooks/exercises/ is excluded: the student versions are generated (git-ignored) and their
# answer cells are empty on purpose; tests/test_exercises.py builds them fresh and executes them instead.
nbval: venv
	$(PY) -m pytest -p no:cacheprovider --nbval-lax --nbval-current-env \
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

data: venv
	$(PY) -m helpers.cohort --default

exercises: venv
	$(PY) -m helpers.exercises

bench: venv
	$(PY) benchmarks/run_all.py

## lock: resolve requirements.txt alone in a throwaway venv and freeze it (the project itself excluded).
lock:
	rm -rf $(LOCK_VENV)
	$(PYTHON) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/python -m pip install --quiet -r requirements.txt
	{ echo "# Full resolved environment for requirements.txt (transitive pins), Python 3.11."; \
	  echo "# Generated by \`make lock\` in a clean venv with only requirements.txt installed; do not edit by hand."; \
	  $(LOCK_VENV)/bin/python -m pip freeze --exclude-editable | grep -vi '^iapt-pathways'; \
	} > constraints.txt.new
	rm -rf $(LOCK_VENV)
	@# Replace only on change: a new mtime alone would make every venv rebuild.
	@if cmp -s constraints.txt.new constraints.txt; then \
	  rm constraints.txt.new; echo "constraints.txt unchanged"; \
	else \
	  mv constraints.txt.new constraints.txt; echo "constraints.txt regenerated; run 'make test' before committing it"; \
	fi

clean:
	rm -rf outputs notebooks/exercises .pytest_cache build dist *.egg-info $(LOCK_VENV)
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +
	find . -path ./$(VENV) -prune -o -name .ipynb_checkpoints -type d -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV)
