#!/usr/bin/env bash
# The check run on a lent GPU machine, where JAX with CUDA, optax, PyTorch and pytest are installed:
# the machine, the benchmarks, the step breakdown, then the test suite on the GPU. Logs go to $OUT
# (default /tmp/gpu_check).
#
#     bash benchmarks/gpu_check.sh [seconds for the benchmarks] [seconds for the tests]
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-/tmp/gpu_check}
mkdir -p "$out"
export PYTHONPATH=$PWD/src PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
python=${PYTHON:-python3}

nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm --format=csv
$python -c "import jax, optax, torch; print('JAX', jax.__version__, jax.devices(), '| optax',
optax.__version__, '| PyTorch', torch.__version__, torch.cuda.is_available())"

# SIGINT, so that a run cut short still prints what it measured or which tests failed.
timeout -s INT "${1:-300}" $python benchmarks/run.py 2>&1 | tee "$out/bench.log"
timeout -s INT 60 $python benchmarks/breakdown.py 2>&1 | tee "$out/breakdown.log"
timeout -s INT "${2:-240}" $python -m pytest -q -p no:cacheprovider -n 12 tests 2>&1 \
    | tee "$out/tests.log" | tail -40
