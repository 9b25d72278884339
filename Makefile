# mtl-course task runner. The README's quickstart is two commands:
#   make course   # create .venv, install everything, open JupyterLab on the course
#   make test     # run the whole test suite (unit tests, doctests, every notebook under nbval)
#
# Variables you may override on the command line:
#   PYTHON=python3.11            the interpreter that creates the virtual environment
#   TORCH_SPEC="torch==2.13.0"   the torch to install first (see README, "GPU")
#   JUPYTER_ARGS="--no-browser --ip=127.0.0.1 --allow-root"   flags for a headless or root session
#   PYTEST_ARGS="-x -k lasso"    extra pytest arguments
#   JOBS=2                       pytest-xdist workers (0 disables xdist)
#   EXECUTE=1                    `make site`: run every notebook before rendering it
#   TEST_THREADS=1               torch threads per worker and notebook kernel during tests

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TORCH_SPEC ?= torch==2.13.0
JUPYTER_ARGS ?=
PYTEST_ARGS ?=
JOBS ?= 2
# Two workers on two cores: one torch thread each. More threads than cores
# makes OpenMP spin and slows small models down many times over.
TEST_THREADS ?= 1
STAMP := $(VENV)/.installed

NBVAL := --nbval-lax --nbval-current-env --nbval-sanitize-with tests/nbval_sanitize.cfg
XDIST := $(if $(filter 0,$(JOBS)),,-n $(JOBS) --dist loadfile)

.PHONY: setup course test test-fast notebooks site benchmarks gpu-check clean

## setup: create the virtual environment and install the course (idempotent)
setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install "$(TORCH_SPEC)"
	$(BIN)/python -m pip install -e ".[test,site,browser]"
	$(BIN)/mtl-course doctor
	touch $@

## course: set up, then open JupyterLab on the first lecture
course: setup
	$(BIN)/jupyter lab --ServerApp.root_dir="$(CURDIR)" $(JUPYTER_ARGS) lectures/00_welcome.ipynb

## test: the whole suite: unit tests, doctests, notebooks under nbval, conventions
test: setup
	OMP_NUM_THREADS=$(TEST_THREADS) MKL_NUM_THREADS=$(TEST_THREADS) $(BIN)/python -m pytest $(XDIST) $(NBVAL) --doctest-modules \
		tests mtl_course lectures solutions $(PYTEST_ARGS); \
	status=$$?; \
	if [ $$status -eq 5 ]; then echo "make test: pytest collected no tests; that is a failure here" >&2; exit 1; fi; \
	exit $$status

## test-fast: unit tests and doctests only (no notebooks)
test-fast: setup
	OMP_NUM_THREADS=$(TEST_THREADS) MKL_NUM_THREADS=$(TEST_THREADS) $(BIN)/python -m pytest $(XDIST) --doctest-modules tests mtl_course $(PYTEST_ARGS)

## notebooks: re-execute every lecture and solution in place (stores fresh outputs)
notebooks: setup
	$(BIN)/mtl-course execute

## site: the course website in _build/html, from the stored outputs (EXECUTE=1 runs the notebooks
## first); -W: any warning fails; then internal links and offline loading are checked
site: setup
	$(BIN)/python site/build.py $(if $(filter-out 0,$(EXECUTE)),--execute,)

## benchmarks: time every notebook and the package's hot paths; print tables
benchmarks: setup
	$(BIN)/python benchmarks/time_notebooks.py

## gpu-check: the CUDA tests and benchmarks in one go (for a machine with a GPU)
gpu-check: setup
	bash benchmarks/gpu_check.sh

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info _build
