#!/usr/bin/env bash
# The prepared script of a short GPU session (it ran on a lent H200 for docs/reproduction.md):
# installs gantk and its missing dependencies from wheels in .whl/ (built beforehand with
# `pip wheel --no-deps . examples/gantk-plugin-example -w .whl` plus `pip download` of pydantic,
# pydantic-core, annotated-types, typing-inspection, tomli-w, mlxtend, clean-fid for the GPU
# machine's Python), runs benchmarks/gpu_throughput.py, the matrix and precision tests on CUDA
# (GANTK_TEST_DEVICE=cuda) and the reproduction sweeps in priority lanes until BUDGET seconds have
# passed, then packs every run directory (without checkpoints) into $OUT/sweeps.tgz. Partial sweeps
# are compared afterwards with `gantk sweep FILE --out DIR --summary --step N`.
#
#     BUDGET=520 bash scripts/gpu_checks.sh        # SKIP_TPUT=1 / SKIP_PYTEST=1 skip those parts
#     PLAN="examples/sweeps/repro_lis_mnist5k.toml:18:4000 ..." EVAL_EVERY=500 SKIP_TPUT=1 SKIP_PYTEST=1 \
#         BUDGET=500 bash scripts/gpu_checks.sh    # the given sweeps only, each in its own lane at once
set -u
export PYTHONUNBUFFERED=1
START=$(date +%s)
DEADLINE=$((START + ${BUDGET:-520}))
DEV=${DEV:-cuda}
JOBS_SCALE=${JOBS_SCALE:-1}
EXTRA=${EXTRA:-}
PY=${PY:-python3}
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
log() { echo "[$(( $(date +%s) - START ))s] $*" | tee -a "$OUT/driver.log"; }

if [ "${SKIP_INSTALL:-0}" != 1 ]; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || { log "install failed"; exit 3; }
  export PYTHONPATH=/tmp/site
  GANTK="$PY /tmp/site/bin/gantk"
else
  GANTK="${GANTK:-gantk}"
fi
{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>&1; nproc;
  $PY -c "import sys,torch,gantk;print(sys.version.split()[0], torch.__version__, torch.cuda.is_available())"; } >> "$OUT/driver.log" 2>&1
log "installed"

# 1. GPU throughput, alone on the GPU (short)
if [ "$DEV" = cuda ] && [ "${SKIP_TPUT:-0}" != 1 ]; then
  timeout -k 5 ${TPUT_S:-80} $PY benchmarks/gpu_throughput.py --steps 20 --warmup 5 --sample-n 1024 --images 512 \
    --configs dcgan-32,resnet-32,stylegan2-32,stylegan2-64 --out "$OUT/gpu_throughput.json" > "$OUT/throughput.log" 2>&1
  log "throughput rc=$?"
fi

SETS=(--set train.device=$DEV --set train.eval_every=${EVAL_EVERY:-1000} --set 'train.eval_metrics=["fid"]' --set train.eval_n=2000)
for e in $EXTRA; do SETS+=(--set "$e"); done

lane() {  # lane NAME "file:jobs ..." : the lane's sweeps one after another until the deadline
  local name=$1; shift
  for item in "$@"; do
    local f j steps extra=()
    IFS=: read -r f j steps <<< "$item"
    [ -n "$steps" ] && extra=(--set train.steps=$steps)
    local left=$((DEADLINE - $(date +%s)))
    [ $left -lt 30 ] && { log "$name: no time for $f"; continue; }
    local out=runs/gpu/$(basename "$f" .toml)
    j=$(( j * JOBS_SCALE )); [ $j -lt 1 ] && j=1
    log "$name: $f jobs $j, $left s left"
    timeout -k 20 -s TERM $left $GANTK sweep "$f" --out "$out" --jobs $j "${SETS[@]}" "${extra[@]}" >> "$OUT/lane_$name.log" 2>&1
    log "$name: $f rc=$?"
  done
}

if [ -n "${PLAN:-}" ]; then  # PLAN="file:jobs[:steps] ...": every item its own lane, all at once
  i=0; for item in $PLAN; do i=$((i + 1)); lane P$i "$item" & done
else
  lane A examples/sweeps/repro_advlat_mnist5k.toml:6 examples/sweeps/repro_lis_mnist5k.toml:6 &
  lane B examples/sweeps/repro_advlat_stacked.toml:6 examples/sweeps/repro_clr_mnist5k.toml:4 examples/sweeps/repro_acl_mnist5k.toml:4 &
fi
( if [ "$DEV" = cuda ] && [ "${SKIP_PYTEST:-0}" != 1 ]; then
    GANTK_TEST_DEVICE=cuda timeout -k 5 200 $PY -m pytest -q -p no:cacheprovider --maxfail=25 -o addopts="-rf" \
      tests/test_matrix.py tests/test_precision.py > "$OUT/pytest_cuda.log" 2>&1
    log "pytest rc=$?"
  fi
  [ -z "${PLAN:-}" ] && lane C "examples/sweeps/repro_advlat_mnist2d.toml:3:${E4_STEPS:-6000}" ) &
wait
log "lanes done"
tar -czf "$OUT/sweeps.tgz" --exclude='*.safetensors' --exclude='*.tmp' runs/gpu 2>/dev/null
ls -la "$OUT" >> "$OUT/driver.log"
log "end"
