#!/usr/bin/env bash
# Mini model, session 12 (plan: docs/mini.md, "Device runs of 2026-12-06 (session 11)").
# Session 11 found that the shipped DiT's videos hardly turn (median 2–3° from the first frame), even with an orbit
# phrase in the prompt: it was trained on the world's mix of six camera motions (orbit 30 %). Issue 10 asks for a DiT
# of "procedural orbit videos", and the judge shows the DiT is where multi-object captions fail (one-object scenes
# score 100, scenes of 2–4 objects 0–50: small, blurred blobs). Its flow-matching loss was still falling at 8000 steps
# (0.0688 → 0.0658 over the last 2000). So two continuations of the shipped DiT run side by side on the one GPU, from
# the shipped weights with a fresh optimizer and an EMA (`--init shipped --ema 0.999`), in pieces of at most 10 min:
#   orbit  `--set motion=orbit`: a latent cache of orbit clips only (3000 + 32 held-out scenes)
#   mix    the world's mix of motions, a larger cache (4000 + 32 scenes; the first 3000 are the shipped DiT's)
# The VAE, recon and stitched decoder stay.
#
# Carry limit (64 MiB): the DiT stage needs diffusers (.whl_lite, 6.5 MB) and MiniLM for the cache's captions
# (.minilm_world, 22 MB: scripts/device/make_minilm_world.py --scenes 6000), which do not fit beside the 54 MB tree.
# For these calls anysplat-mini's and stitched-mini's weights (29 MB; the DiT stage reads neither) are moved out of
# the working tree (not committed) and put back afterwards.
#
# One call per PHASE, back to back on one warm machine (it goes back 30 s after a call ends):
#   PHASE=1  carry .whl_lite and .minilm_world: both caches, then both DiTs for the rest of the call
#   PHASE=2  both resumed; both exports packed (p2)
#   PHASE=3  both resumed to their end; packed again (p3)
# Then on the CPU: scripts/pack_mini_candidate.py --transformer RUN/wan_mini/transformer, `vist3a eval text-to-3d
# --model mini --world 12` at the default and 777 generation seeds with VIST3A_MINI_ASSETS on each candidate, and
# benchmarks/generated_camera_motion.py: does the generated video orbit, and do the judge and consistency hold?
set -uo pipefail
export WHL=${WHL:-.whl_lite}
source scripts/device/mini_setup.sh
export VIST3A_MINILM=$PWD/.minilm_world
R=runs/mini; mkdir -p $R; t0=$(date +%s); B=${BUDGET:-540}
A=src/vist3a/assets/mini
source scripts/device/mini_recipes.sh
DIT="python3 -m vist3a world train-mini --stage dit --vae $A/wan-mini --init shipped --eval-scenes 32
  --steps ${DIT_STEPS:-10000} --batch ${DIT_BATCH:-32} --lr 1e-4 --warmup 100 --ema 0.999 --eval-every 1000 --ckpt-every 500"
run() {  # run NAME CACHE_SCENES [--set ...]: the cache (phase 1 only), then training until 20 s before the budget
  local n=$1 c=$2; shift 2
  if [ "${PHASE:-1}" = 1 ]; then
    OMP_NUM_THREADS=8 $DIT --out $R/dit_$n --cache-scenes $c --cache-only "$@" > $R/dit_$n.cache.log 2>&1
    echo "== $n cache (rc $?) at $(( $(date +%s) - t0 )) s"; last $R/dit_$n.cache.log
  fi
  OMP_NUM_THREADS=8 timeout $((B - 20 - ($(date +%s) - t0))) $DIT --out $R/dit_$n --cache-scenes $c \
    --minutes $(left 45) $([ -d $R/dit_$n/checkpoints ] && echo --resume) "$@" > $R/dit_$n.$PHASE.log 2>&1
  echo "== $n (rc $?)"; last $R/dit_$n.$PHASE.log
}
if [ "${PHASE:-1}" != 1 ] && ! python3 -c "import diffusers" 2>/dev/null; then
  echo "a fresh machine: phase 1's wheels and caches are gone; rerun PHASE=1 with its carry"; exit 3
fi
[ -d "$VIST3A_MINILM" ] || [ "${PHASE:-1}" != 1 ] || { echo "carry .minilm_world"; exit 3; }
run orbit ${ORBIT_SCENES:-3000} --set motion=orbit &
run mix ${MIX_SCENES:-4000} &
wait
[ "${PHASE:-1}" = 1 ] || pack p$PHASE $R/dit_orbit/wan_mini/transformer $R/dit_mix/wan_mini/transformer \
  $R/dit_*/metrics.json $R/dit_*.log
echo "total $(( $(date +%s) - t0 )) s"
