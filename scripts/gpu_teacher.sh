#!/usr/bin/env bash
# Rebuild the built-in teacher on a GPU, then distill the 10x student from it (KD against the
# no-KD baseline) at two budgets, as one prepared run for a lent GPU machine.
#
#   OUT=/some/dir scripts/gpu_teacher.sh           # on a CUDA machine, from the repository root
#   SMOKE=1 OUT=/tmp/t scripts/gpu_teacher.sh      # a seconds-long rehearsal on the CPU
#
# The teacher lands in models/assets/teacher (split into ≤15 MB parts in $OUT to travel back:
# `cat teacher.tgz.part-* | tar xz -C models/assets`).
set -uo pipefail
OUT=${OUT:?set OUT to the output folder}
PY=${PY:-python3}
WORK=${WORK:-/tmp/gpu-teacher}
rm -rf "$WORK" && mkdir -p "$WORK" "$OUT"
export PYTHONPATH="${PYTHONPATH:+$PYTHONPATH:}$PWD" PYTHONUNBUFFERED=1
DATA=stdlib
[ -d .stdlib311 ] && DATA="pysrc:$PWD/.stdlib311"
if [ -n "${SMOKE:-}" ]; then
  DEV=cpu DTYPE=fp32 TSTEPS=6 TBATCH=4 SSTEPS=6 SBATCH=4 CSTEPS=4 EVAL=3 ASSET=$WORK/teacher
else
  DEV=cuda DTYPE=bf16 TSTEPS=${TSTEPS:-5000} TBATCH=64 SSTEPS=3000 SBATCH=64 CSTEPS=1500 EVAL=500
  ASSET=$PWD/bench/assets/teacher
fi
date -u; nvidia-smi --query-gpu=name --format=csv,noheader 2>&1

echo "== teacher: $TSTEPS steps x $TBATCH x 256 on $DEV ($DTYPE)"; SECONDS=0
timeout 210 $PY -m distill.build_teacher --steps "$TSTEPS" --work "$WORK/teacher-build" \
  --asset-dir "$ASSET" --set batch_size=$TBATCH --set dtype=$DTYPE --set device=$DEV \
  --set "data_source=$DATA" --set eval_every=$EVAL --set ckpt_every=1000 > "$OUT/teacher.log" 2>&1
echo "teacher: rc=$? ${SECONDS}s"; grep -v "^step" "$OUT/teacher.log" | tail -n 12

echo "== the 10x student from the new teacher: KD vs no-KD baseline"; SECONDS=0
cat > "$WORK/plan.yaml" <<EOF
decision: {go: true, reasons: ["GPU check"]}
trainer: {teacher: "ckpt:$ASSET", student: "builtin:student-10x", temperature: 1.0, alpha: 0.9,
          lr: 0.003, min_lr: 0.0003, warmup_steps: 200, eval_every: $EVAL, ckpt_every: 100000,
          dtype: $DTYPE, device: $DEV, data_source: "$DATA"}
EOF
D="$PY -m app.cli distill --plan $WORK/plan.yaml"
( timeout 130 $D --out "$WORK/d-big" --set steps=$SSTEPS --set batch_size=$SBATCH ) \
  > "$OUT/d-big.log" 2>&1 &
( timeout 130 $D --out "$WORK/d-cpubudget" --set steps=$CSTEPS --set batch_size=16 ) \
  > "$OUT/d-cpubudget.log" 2>&1 &
wait
echo "students: ${SECONDS}s"
$PY - "$WORK" "$OUT" "$ASSET" <<'EOF'
import json, sys
from pathlib import Path
work, out, asset = map(Path, sys.argv[1:])
summary = {}
if (asset / "metrics.json").is_file():
    summary["teacher"] = json.loads((asset / "metrics.json").read_text())
for d in sorted(work.glob("d-*/metrics.json")):
    summary[d.parent.name] = m = json.loads(d.read_text())
    print(d.parent.name, "teacher", m["teacher"]["accuracy"], "student", m["student"]["accuracy"],
          "baseline", m["baseline"]["accuracy"], "int8", m["student_int8"]["accuracy"],
          "retention", m["retention_accuracy"], "gain", m["kd_gain_accuracy"],
          "wall_s", m["wall_s"])
if "teacher" in summary:
    t = summary["teacher"]
    print("teacher test", t["student"], [(h["step"], round(h["accuracy"], 4)) for h in t["history"]])
(out / "teacher_summary.json").write_text(json.dumps(summary, indent=1))
EOF
tar czf "$WORK/teacher.tgz" -C "$(dirname "$ASSET")" "$(basename "$ASSET")" 2>/dev/null \
  && split -b 15m "$WORK/teacher.tgz" "$OUT/teacher.tgz.part-"
ls -la "$OUT"
