#!/usr/bin/env bash
# Mini model, the device session after session 13 (docs/mini.md, "Device runs of 2026-12-06 (session 13)").
# Session 13 shipped the VAE decoder's colour fine-tune (colours kept 37 -> 77 %, perfect-DiT ceiling 47.6 -> 63.6)
# and tried a re-stitch with `--student-rgb decoded` on it, which stopped at 379 of its 600 steps (one call) and
# scored below the shipped decoder on the ceiling (51.5 against 63.6). This session runs that re-stitch to its full
# length on the now-shipped VAE, so it can be judged at the length the shipped decoder had.
#
# One call per PHASE, back to back on one warm machine (it goes back 30 s after a call ends); carry .whl in each:
#   PHASE=1  world set + layer search + LoRA r16 distillation with --student-rgb decoded (gsplat builds first)
#   PHASE=2  resumed to 600 steps; the stitched decoder packed (p2)
# Then on the CPU: scripts/pack_mini_candidate.py --stitched RUN/stitch_rgbdec --out runs/cand/s14; with
# VIST3A_MINI_ASSETS on it, `vist3a eval text-to-3d --model mini --world 12` at the default and 777 generation seeds
# and benchmarks/t3d_ceiling.py --world 12 (against session 13's 55.3 / 53.1 and 63.6); ship if they rise.
set -uo pipefail
source scripts/device/mini_setup.sh
R=runs/mini; mkdir -p $R; t0=$(date +%s); B=${BUDGET:-540}
A=src/vist3a/assets/mini
source scripts/device/mini_recipes.sh
build_gsplat > $R/gsplat.log 2>&1 || { echo "gsplat build failed"; tail -5 $R/gsplat.log; }
if [ "${PHASE:-1}" = 1 ]; then
  STITCH_EXTRA="--loss-weight depth_grad=0.05 --student-rgb decoded" stitch rgbdec $A/anysplat-mini $(left 45)
else
  [ -d $R/search_rgbdec ] || { echo "a fresh machine: PHASE=1's search is gone; rerun PHASE=1"; exit 3; }
  OMP_NUM_THREADS=8 python3 -m vist3a stitch train --video wan-mini --video-weights $A/wan-mini \
    --recon anysplat-mini --recon-weights $A/anysplat-mini --init $R/search_rgbdec --world 20000 --world-seed 3 \
    --frames 13 --batch 4 --steps 600 --lora r16,a16,d0.0,f0 --lr 3e-4 --warmup 50 --ckpt-every 100 \
    --loss-weight depth_grad=0.05 --student-rgb decoded --minutes $(left 45) --resume --out $R/stitch_rgbdec \
    > $R/stitch_rgbdec.$PHASE.log 2>&1
fi
echo "== stitch_rgbdec"; last $(ls -t $R/stitch_rgbdec*.log | head -1)
mkdir -p $R/pk && cp $R/stitch_rgbdec/stitched.* $R/pk/
pack p${PHASE:-1} $R/pk $R/search_rgbdec/report.* $R/*.log
echo "total $(( $(date +%s) - t0 )) s"
