#!/usr/bin/env bash
# The GPU check, prepared to run in one go when a CUDA machine is available
# for a few minutes: the unit tests on CUDA, then the device benchmarks.
# Usage: bash benchmarks/gpu_check.sh   (from the repository root, after `make setup`)
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
$PY -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else '')"
status=0
echo "== unit tests on CUDA"
MTL_COURSE_TEST_DEVICE=cuda $PY -m pytest -q -p no:cacheprovider tests -k "not browser and not site and not notebook" || status=1
for bench in benchmarks/bench_models_device.py benchmarks/bench_weighting.py; do
  [ -f "$bench" ] || continue
  echo "== $bench"
  MTL_COURSE_DEVICE=cuda $PY "$bench" || status=1
done
exit $status
