#!/usr/bin/env bash
# GPU checks and benchmarks on the lent H100, run from the repo root by the device tool:
#   bash scripts/device/gpu_suite.sh STAGE...     (stages: tests render anysplat video metrics search stitched generate nvs align t23d)
# Wheels missing on the device (diffusers, gsplat, plyfile, ...) travel in .whl/ (see docs/benchmarks.md).
# Every result lands in benchmarks/results/ and is packed into $OUT/results.tar.gz (the tool returns at most 8 files).
set -uo pipefail
export PYTHONUNBUFFERED=1 NCCL_NVLS_ENABLE=0
if [ -d .whl ]; then
  # NOGSPLAT=1 leaves gsplat out (its CUDA build takes ~100 s on a fresh machine; rendering then uses the torch path)
  wheels=$(ls .whl/*.whl | { if [ -n "${NOGSPLAT:-}" ]; then grep -v gsplat; else cat; fi; })
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site $wheels || exit 1
  export PYTHONPATH=/tmp/site:$PWD/src
else
  export PYTHONPATH=$PWD/src
fi
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT" benchmarks/results
R=benchmarks/results
log() { echo "=== $(date -u +%H:%M:%S) $*"; }
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee $R/gpu_machine.txt
python3 -c 'import torch; print("torch", torch.__version__)' | tee -a $R/gpu_machine.txt
[ -z "${NOGSPLAT:-}" ] && python3 -c 'import gsplat, torch; from gsplat.cuda._backend import _C; print("gsplat", gsplat.__version__, "built")' 2>&1 | tail -1
for stage in "$@"; do
  log "$stage"
  case $stage in
    tests) python3 -m pytest -m gpu -v -rs -p no:cacheprovider --continue-on-collection-errors 2>&1 | tee $R/gpu_tests.log ;;
    render) python3 benchmarks/bench_render.py --device cuda --backward --repeats 5 --out $R/render_gpu ;;
    anysplat) python3 benchmarks/bench_anysplat.py --out $R/anysplat_gpu.json
              python3 benchmarks/bench_anysplat_heads.py --device cuda --views 2 8 32 --out $R/anysplat_heads_gpu.json ;;
    video) python3 benchmarks/bench_video.py --skip-text --out $R/video_gpu.json ;;
    metrics) python3 benchmarks/bench_metrics.py --device cuda --out $R/metrics_gpu.json ;;
    search) python3 benchmarks/bench_stitch_search.py --device cuda --out $R/stitch_search_gpu.json
            python3 benchmarks/bench_stitch_search_e2e.py --pair official --clips 4 --device cuda --out $R/stitch_search_e2e_official_gpu.json ;;
    stitched) python3 benchmarks/bench_stitched.py --out $R/stitched_gpu.json ;;
    generate) python3 benchmarks/bench_generate.py --out $R/generate_gpu.json ;;
    nvs) python3 benchmarks/bench_eval_nvs.py --device cuda --preset anysplat --sequences 8 --out $R/eval_nvs_gpu.json ;;
    align) python3 benchmarks/bench_align.py --out $R/align_gpu.json ;;
    t23d) python3 benchmarks/bench_eval_t23d.py --device cuda --generate 0 --out $R/eval_t23d_gpu.json ;;
    *) echo "unknown stage $stage" ;;
  esac
  tar czf "$OUT/results.tar.gz" $R
done
log done
