#!/usr/bin/env bash
# The GPU checks, as one prepared run for a lent GPU machine (see BENCHMARKS.md, "GPU").
#
#   OUT=/some/dir scripts/gpu_checks.sh            # on a CUDA machine, from the repository root
#   SMOKE=1 OUT=/tmp/g scripts/gpu_checks.sh       # a seconds-long rehearsal on the CPU
#
# 1. the CUDA tests (tests/integration/test_gpu.py);
# 2. roi bench on the GPU: teacher and students, fp32 and bf16, batch 1/8/64 (for the projection
#    check: predict these rows from the CPU calibration and the catalog, compare);
# 3. the distillation of the 10x student at a full budget: `roi distill` (KD student, no-KD
#    baseline, ONNX and int8, retention), beside KD variants trained in parallel on the same GPU.
# Everything lands in $OUT: logs, results.csv, metrics, and the distilled student (no optimizer
# state) as a tarball that `roi bench --students ckpt:DIR` measures on any machine.
set -uo pipefail
OUT=${OUT:?set OUT to the output folder}
PY=${PY:-python3}
WORK=${WORK:-/tmp/gpu-work}
rm -rf "$WORK" && mkdir -p "$WORK" "$OUT"
export PYTHONPATH="${PYTHONPATH:+$PYTHONPATH:}$PWD" PYTHONUNBUFFERED=1
# the corpus: a copy of the standard library the shipped teacher was trained on (same splits
# and fingerprint on any Python), when present; else this Python's own
DATA=stdlib
[ -d .stdlib311 ] && DATA="pysrc:$PWD/.stdlib311"

if [ -n "${SMOKE:-}" ]; then
  DEV=cpu STEPS=12 LONG=16 BATCH=4 EVAL=6 BENCH_BS=1 BENCH_DEV=cpu DTYPE=fp32
else
  DEV=cuda STEPS=${STEPS:-6000} LONG=${LONG:-10000} BATCH=${BATCH:-64} EVAL=500 BENCH_BS=1,8,64
  BENCH_DEV=cuda DTYPE=bf16
fi

echo "== machine"; date -u; nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1
$PY -c "import torch, onnxruntime as o; print('torch', torch.__version__, 'cuda', \
torch.cuda.is_available(), 'ort', o.__version__, o.get_available_providers())"

echo "== 1. CUDA tests"; SECONDS=0
timeout 90 $PY -m pytest -q -p no:cacheprovider tests/integration/test_gpu.py 2>&1 | tail -15
echo "tests: ${SECONDS}s"

echo "== 2. bench on $BENCH_DEV"; SECONDS=0
timeout 120 $PY -m app.cli bench --device "$BENCH_DEV" --backends torch-eager,torch-eager-bf16 \
  --batch-sizes "$BENCH_BS" --seq-lens 128 --quick --rounds 1 --no-isolate \
  --out "$WORK/bench" > "$OUT/bench.log" 2>&1
echo "bench: rc=$? ${SECONDS}s"; tail -40 "$OUT/bench.log"
cp "$WORK/bench/results.csv" "$OUT/gpu_results.csv" 2>/dev/null

echo "== 3. distillation of the 10x student on $DEV ($DTYPE, $STEPS steps x $BATCH x 256)"
SECONDS=0
cat > "$WORK/common.yaml" <<EOF
student: builtin:student-10x
temperature: 1.0
alpha: 0.9
lr: 0.003
min_lr: 0.0003
warmup_steps: 200
batch_size: $BATCH
steps: $STEPS
eval_every: $EVAL
ckpt_every: 100000
eval_windows: 64
dtype: $DTYPE
device: $DEV
data_source: "$DATA"
EOF
cat > "$WORK/plan.yaml" <<EOF
decision: {go: true, reasons: ["GPU check: the plan is fixed here"]}
trainer: {}
EOF
cat > "$WORK/variant.py" <<'EOF'
import json, sys, time
from distill.config import load_config
from distill.trainer import train
name, common, out, *sets = sys.argv[1:]
overrides = dict(kv.split("=", 1) for kv in sets)
overrides = {k: json.loads(v) for k, v in overrides.items()}
cfg = load_config(common, overrides)
t0 = time.time()
def progress(step, total, loss):
    if step % 500 == 0 or step == total:
        print(f"{name} step {step}/{total} loss {loss:.3f} {time.time() - t0:.0f}s", flush=True)
m = train(cfg, out, progress=progress).metrics
keep = {k: m[k] for k in ("student", "teacher", "retention_accuracy", "wall_s", "speed", "history")}
json.dump({"name": name, "overrides": overrides, **keep}, open(f"{out}/variant.json", "w"), indent=1)
print(name, "accuracy", m["student"]["accuracy"], "retention", m["retention_accuracy"])
EOF
( timeout 300 $PY -m app.cli distill --plan "$WORK/plan.yaml" --config "$WORK/common.yaml" \
    --out "$WORK/distill" > "$OUT/distill.log" 2>&1; echo "distill rc=$?" >> "$OUT/distill.log" ) &
V="$PY $WORK/variant.py"
( timeout 300 $V alpha1 "$WORK/common.yaml" "$WORK/v-alpha1" alpha=1.0 ) > "$WORK/v1.log" 2>&1 &
( timeout 300 $V T2 "$WORK/common.yaml" "$WORK/v-T2" temperature=2.0 ) > "$WORK/v2.log" 2>&1 &
( timeout 300 $V long "$WORK/common.yaml" "$WORK/v-long" steps=$LONG ) > "$WORK/v3.log" 2>&1 &
wait
echo "distillation: ${SECONDS}s"
tail -5 "$OUT/distill.log"; cat "$WORK"/v*.log > "$OUT/variants.log"; tail -n 4 "$WORK"/v*.log
$PY - "$WORK" "$OUT" <<'EOF'
import json, sys
from pathlib import Path
work, out = map(Path, sys.argv[1:])
summary = {}
m = work / "distill" / "metrics.json"
if m.is_file():
    summary["distill"] = json.loads(m.read_text())
for v in sorted(work.glob("v-*/variant.json")):
    summary[v.parent.name] = json.loads(v.read_text())
(out / "distill_summary.json").write_text(json.dumps(summary, indent=1))
for k, s in summary.items():
    r = s.get("retention_accuracy")
    print(k, "retention", r, "baseline", s.get("baseline_retention_accuracy"),
          "int8", s.get("int8_retention_accuracy"), "speed", s.get("speed"))
EOF
# the distilled student as a ckpt:DIR (fp32 ONNX and optimizer state left out: bench re-exports)
tar czf "$OUT/student.tgz" -C "$WORK" --exclude=train_state.pt --exclude=student.onnx \
  --exclude=baseline/model.safetensors distill 2>/dev/null
ls -la "$OUT"
