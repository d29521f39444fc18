#!/usr/bin/env bash
# Issue 11, on a machine with two or more GPUs (run kind nvidia-h100-x2 or larger; carry .whl): the one-GPU and the
# multi-GPU run of each command, timed, then benchmarks/multi_gpu_compare.py. NCCL's NVLink multicast stays off
# (mini_setup.sh exports NCCL_NVLS_ENABLE=0). Everything lands in $OUT/multi_gpu/ (JSON, logs, nvidia-smi memory
# samples) for benchmarks/results/multi_gpu_<date>/.
#   1. `vist3a stitch train`, mini preset (a fresh stitching layer + LoRA r16 over the shipped anysplat-mini), the
#      same global batch: one GPU at batch 4 against NGPU GPUs at 4/NGPU each -> loss-curve parity and scaling
#   2. `vist3a generate --prompts-file` (NPROMPTS world captions): each prompt once, the same scenes as one GPU
#   3. `vist3a align --model mini` (DDP) for a few steps: step time and per-GPU memory against one GPU
#   4. (align13b) the same trainer at the Wan-1.3B size, random weights (benchmarks/bench_align.py: Wan 1.3B DiT bf16
#      + LoRA, the official stitched AnySplat, gsplat, the consistency reward), one GPU against torchrun: step time and
#      peak memory per GPU
# Text: MiniLM does not fit beside the tree and .whl in the 64 MiB carry, so 2 and 3 read prompt-embedding caches
# written here on the CPU first (PREP=1, no GPU needed; then carry .carry):
#   PREP=1 bash scripts/device/multi_gpu_call.sh   -> .carry/prompts.txt, .carry/text_cache_gen.safetensors (generate
#   --write-text-cache) and .carry/text_cache_world64.safetensors (align --write-text-cache)
# PARTS picks the runs (default "stitch generate align align13b").
# A CPU dry run (gloo, tiny step counts): ALLOW_CPU=1 NGPU=2 DEVICE=cpu STEPS=2 PARTS=stitch bash THIS
set -uo pipefail
if [ "${PREP:-0}" = 1 ]; then  # on the CPU, where MiniLM is: the prompts and both text caches
  mkdir -p .carry
  python3 - "${NPROMPTS:-16}" > .carry/prompts.txt <<'PY'
import sys
from vist3a.eval.text_to_3d import world_scenes
for s in world_scenes(int(sys.argv[1]), 7919, 12413):
    print(s.prompt)
PY
  python3 -m vist3a generate --prompts-file .carry/prompts.txt --model mini --device cpu \
    --write-text-cache .carry/text_cache_gen.safetensors &&
  python3 -m vist3a align --model mini --world 64 --device cpu --out /tmp/mgpu_prep \
    --write-text-cache .carry/text_cache_world64.safetensors
  exit $?
fi
source scripts/device/mini_setup.sh
DEVICE=${DEVICE:-cuda}
NG=${NGPU:-$(nvidia-smi -L 2>/dev/null | wc -l)}
[ "$NG" -ge 2 ] || { echo "needs 2 or more GPUs (found $NG); NGPU=2 DEVICE=cpu for a gloo dry run"; exit 5; }
R=runs/mgpu; rm -rf $R; mkdir -p $R; M=$OUT/multi_gpu; mkdir -p $M
A=src/vist3a/assets/mini
TR="torchrun --standalone --nproc_per_node $NG"
if [ "$DEVICE" = cuda ]; then
  nvidia-smi --query-gpu=timestamp,index,memory.used --format=csv,noheader -lms 500 > $M/gpu_memory.csv &
  SMI=$!
fi
timed() {  # timed NAME CMD...: run, log to $M/NAME.log, record the wall seconds in $M/NAME.s
  local name=$1; shift
  local t=$(date +%s.%N)
  "$@" > $M/$name.log 2>&1; local rc=$?
  python3 -c "print(round($(date +%s.%N) - $t, 2))" > $M/$name.s
  echo "== $name (rc $rc, $(cat $M/$name.s) s)"; tail -c 400 $M/$name.log | tr '\r' '\n' | grep -v '^\s*$' | tail -2
}
PARTS=${PARTS:-stitch generate align align13b}
# 1. stitching: the same clips per step (the step sampler shards the global batch), bf16 on the GPU
ST="-m vist3a stitch train --video wan-mini --video-weights $A/wan-mini --stitched stitched-mini --world 2000
  --world-seed 3 --frames 13 --steps ${STEPS:-100} --lora r16,a16,d0.0,f0 --lr 3e-4 --warmup 10 --ckpt-every 1000
  --workers 2 --device $DEVICE"
if [[ " $PARTS " == *" stitch "* ]]; then
  CUDA_VISIBLE_DEVICES=0 timed stitch_1 python3 $ST --batch 4 --out $R/stitch_1
  timed stitch_n $TR $ST --batch $((4 / NG)) --out $R/stitch_n
  python3 benchmarks/multi_gpu_compare.py stitch $R/stitch_1 $R/stitch_n --seconds $(cat $M/stitch_1.s) \
    $(cat $M/stitch_n.s) --out $M/stitch_compare.json
fi
# 2. sharded generation: world captions (held-out set, PREP=1), the default seed, no text encoder
if [[ " $PARTS " == *" generate "* ]]; then
  GEN="-m vist3a generate --prompts-file .carry/prompts.txt --model mini --no-video
    --text-cache .carry/text_cache_gen.safetensors"
  # one CPU thread per process in both runs (torchrun's default): with another thread count the CPU's float sums
  # differ and the sampled scenes drift apart (gloo dry run: 2 threads vs 1 changed the splat counts)
  CUDA_VISIBLE_DEVICES=0 OMP_NUM_THREADS=1 timed generate_1 python3 $GEN --device $DEVICE --out $R/gen_1
  OMP_NUM_THREADS=1 timed generate_n $TR $GEN --out $R/gen_n $([ "$DEVICE" = cpu ] && echo --device cpu)
  python3 benchmarks/multi_gpu_compare.py generate $R/gen_1 $R/gen_n --seconds $(cat $M/generate_1.s) \
    $(cat $M/generate_n.s) --out $M/generate_compare.json
fi
# 3. alignment, mini preset (DDP): a few steps each; step times are in the logs, memory in gpu_memory.csv
if [[ " $PARTS " == *" align "* ]]; then
  AL="-m vist3a align --model mini --world 64 --steps ${ALIGN_STEPS:-10} --min-steps 8 --max-steps 8 --drtune-k 2
    --cfg 3 3 --reward-views 2 --ckpt-every 1000 --device ${DEVICE} --text-cache .carry/text_cache_world64.safetensors"
  CUDA_VISIBLE_DEVICES=0 timed align_1 python3 $AL --out $R/align_1
  timed align_n $TR $AL --out $R/align_n
fi
# 4. alignment at the Wan-1.3B size (random weights): 3 timed steps after a warm-up, per rank
if [[ " $PARTS " == *" align13b "* ]]; then
  CUDA_VISIBLE_DEVICES=0 timed align13b_1 python3 benchmarks/bench_align.py --steps 3 --out $M/align13b_1.json
  timed align13b_n $TR benchmarks/bench_align.py --steps 3 --out $M/align13b_n.json
fi
[ -n "${SMI:-}" ] && kill $SMI
ls -la $M
