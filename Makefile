# mtl-course task runner. The README's quickstart is two commands:
#   make course   # create .venv, install everything, open JupyterLab on the course
#   make test     # run the whole test suite (unit tests, doctests, every notebook under nbval)
#
# Variables you may override on the command line:
#   PYTHON=python3.11            the interpreter that creates the virtual environment (>= 3.10)
#   TORCH_SPEC="torch==2.13.0"   pip arguments for the torch to install first (see README, "Using a GPU"),
#                                e.g. TORCH_SPEC="torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu"
#   JUPYTER_ARGS="--no-browser --ip=127.0.0.1 --allow-root"   flags for a headless or root session
#   PORT=8888                    the port JupyterLab listens on
#   PYTEST_ARGS="-x -k lasso"    extra pytest arguments
#   JOBS=2                       pytest-xdist workers (0 disables xdist)
#   EXECUTE=1                    `make site`: run every notebook before rendering it
#   TEST_THREADS=1               torch threads per worker and notebook kernel during tests

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TORCH_SPEC ?= torch==2.13.0
JUPYTER_ARGS ?=
PORT ?= 8888
PYTEST_ARGS ?=
JOBS ?= 2
# Two workers on two cores: one torch thread each. More threads than cores
# makes OpenMP spin and slows small models down many times over.
TEST_THREADS ?= 1
STAMP := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev
# one stamp per torch spec: a new TORCH_SPEC has no stamp yet, so torch and the course are reinstalled
TORCH_STAMP := $(VENV)/.torch-$(shell echo '$(TORCH_SPEC)' | cksum | cut -d' ' -f1)
FIRST_LECTURE := lectures/00_welcome.ipynb

NBVAL := --nbval-lax --nbval-current-env --nbval-sanitize-with tests/nbval_sanitize.cfg
XDIST := $(if $(filter 0,$(JOBS)),,-n $(JOBS) --dist loadfile)

.PHONY: setup setup-dev course test test-fast notebooks site benchmarks gpu-check clean

## setup: create the virtual environment and install what a student needs (idempotent;
## reinstalls when pyproject.toml or TORCH_SPEC changes; `make clean setup` starts afresh)
setup: $(STAMP)

## setup-dev: setup, plus the extras for the tests, the website and the browser tests
setup-dev: $(DEV_STAMP)

$(TORCH_STAMP):
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null || { \
		echo "make: the course needs Python >= 3.10; '$(PYTHON)' is $$($(PYTHON) --version 2>&1)." >&2; \
		echo "      Choose another interpreter, e.g. make course PYTHON=python3.11" >&2; exit 1; }
	@$(PYTHON) -m venv --help >/dev/null 2>&1 || { \
		echo "make: '$(PYTHON) -m venv' is missing (Debian/Ubuntu: apt install python3-venv)." >&2; exit 1; }
	@mkdir -p $(VENV)
	@echo '$(TORCH_SPEC)' > $@

$(STAMP): pyproject.toml $(TORCH_STAMP)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install $(TORCH_SPEC)
	$(BIN)/python -m pip install -e .
	$(BIN)/python -m mtl_course.jupyter_settings
	$(BIN)/mtl-course doctor
	touch $@

$(DEV_STAMP): $(STAMP)
	$(BIN)/python -m pip install -e ".[test,site,browser]"
	touch $@

## course: set up, then open JupyterLab on the first lecture (it prints the URL to open)
course: setup
	@$(BIN)/jupyter trust lectures/*.ipynb exercises/*.ipynb >/dev/null
	@token=$$($(BIN)/python -c 'import secrets; print(secrets.token_hex(24))'); \
	echo ""; echo "    Open the course at http://127.0.0.1:$(PORT)/lab/tree/$(FIRST_LECTURE)?token=$$token"; echo ""; \
	$(BIN)/jupyter lab --ServerApp.root_dir="$(CURDIR)" --ServerApp.port=$(PORT) --ServerApp.port_retries=0 \
		--IdentityProvider.token=$$token $(JUPYTER_ARGS) $(FIRST_LECTURE)

## test: the whole suite: unit tests, doctests, notebooks under nbval, conventions
test: setup-dev
	OMP_NUM_THREADS=$(TEST_THREADS) MKL_NUM_THREADS=$(TEST_THREADS) $(BIN)/python -m pytest $(XDIST) $(NBVAL) --doctest-modules \
		tests mtl_course lectures solutions $(PYTEST_ARGS); \
	status=$$?; \
	if [ $$status -eq 5 ]; then echo "make test: pytest collected no tests; that is a failure here" >&2; exit 1; fi; \
	exit $$status

## test-fast: unit tests and doctests only (no notebooks)
test-fast: setup-dev
	OMP_NUM_THREADS=$(TEST_THREADS) MKL_NUM_THREADS=$(TEST_THREADS) $(BIN)/python -m pytest $(XDIST) --doctest-modules tests mtl_course $(PYTEST_ARGS)

## notebooks: re-execute every lecture and solution in place (stores fresh outputs)
notebooks: setup-dev
	$(BIN)/mtl-course execute

## site: the course website in _build/html, from the stored outputs (EXECUTE=1 runs the notebooks
## first); -W: any warning fails; then internal links and offline loading are checked
site: setup-dev
	$(BIN)/python site/build.py --update-ledger-page $(if $(filter-out 0,$(EXECUTE)),--execute,)

## benchmarks: time every notebook and the package's hot paths; print tables
benchmarks: setup-dev
	$(BIN)/python benchmarks/time_notebooks.py

## gpu-check: the CUDA tests and benchmarks in one go (for a machine with a GPU)
gpu-check: setup-dev
	bash benchmarks/gpu_check.sh

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info _build
