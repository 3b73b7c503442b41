#!/usr/bin/env bash
# Issue 8's GPU check, as one prepared run for a lent GPU machine: Llama-3.2-1B (and Qwen2.5-0.5B)
# built from their shipped configs with random weights, timed at a few batch sizes (TTFT, TPOT,
# output tokens/s, peak memory; HF eager decode and a CUDA-graph decode step), each point set
# beside roi's projection for the H200 in bf16 at TP 1 (checks/llm_timing.py, checks/llm_check.py).
#
#   bash scripts/gpu_llm.sh                        # on the device machine ($OUT is set there);
#                                                  # carry .whl (pydantic wheels for Python 3.12)
#   SMOKE=1 OUT=/tmp/l bash scripts/gpu_llm.sh     # a rehearsal on the CPU (shrunk models)
#
# $OUT receives at most five files: llm.log, measured.json (raw points, environment),
# comparison.csv / .json / .md (measured vs predicted, band, ratios, implied efficiencies).
# Knobs: MODELS, BATCHES, PROMPT, OUTPUT (tokens), LIMIT_S (seconds for the whole measurement).
set -uo pipefail
OUT=${OUT:?set OUT to the output folder}
PY=${PY:-python3}
mkdir -p "$OUT"
export PYTHONPATH="${PYTHONPATH:+$PYTHONPATH:}$PWD" PYTHONUNBUFFERED=1

# roi needs pydantic, which the device image lacks: install the carried wheels (.whl/, made with
# the device README's `pip download ... --python-version 3.12`) into /tmp/site.
if ! $PY -c "import pydantic" 2>/dev/null; then
  if ls .whl/*.whl > /dev/null 2>&1; then
    $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
      --target /tmp/site .whl/*.whl || exit 2
    export PYTHONPATH="/tmp/site:$PYTHONPATH"
  else
    echo "pydantic is missing and no .whl/*.whl to install: carry .whl"; exit 2
  fi
fi

MODELS=${MODELS:-llama-3.2-1b qwen2.5-0.5b}
if [ -n "${SMOKE:-}" ]; then
  DEV=cpu LIMIT_S=${LIMIT_S:-120}
  ARGS="--smoke --threads 1 --batch-sizes ${BATCHES:-1,4} --prompt-tokens ${PROMPT:-64}"
  ARGS="$ARGS --output-tokens ${OUTPUT:-16}"
else
  DEV=cuda LIMIT_S=${LIMIT_S:-300}
  ARGS="--batch-sizes ${BATCHES:-1,8,32,64,128} --prompt-tokens ${PROMPT:-512}"
  ARGS="$ARGS --output-tokens ${OUTPUT:-128}"
fi
MODEL_ARGS=""
for m in $MODELS; do MODEL_ARGS="$MODEL_ARGS --model $m"; done

{
  echo "== machine"; date -u; uname -m
  nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.mem \
    --format=csv 2>&1 | head -3
  $PY -c "import sys, torch, transformers; print('python', sys.version.split()[0], 'torch', \
torch.__version__, 'cuda', torch.cuda.is_available(), 'transformers', transformers.__version__)"
  echo "== measure on $DEV: $MODELS ($ARGS)"; SECONDS=0
  timeout "$LIMIT_S" $PY -m checks.llm_check $MODEL_ARGS --device "$DEV" $ARGS \
    --hardware h200 --predict-dtype bf16 --out "$OUT"
  echo "measure: rc=$? ${SECONDS}s"
  nvidia-smi --query-gpu=clocks.sm,clocks.mem,temperature.gpu,power.draw --format=csv 2>&1 \
    | head -2
} 2>&1 | tee "$OUT/llm.log"
ls -la "$OUT"
