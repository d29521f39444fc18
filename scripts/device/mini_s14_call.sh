#!/usr/bin/env bash
# Mini model, the device session after session 13 (docs/mini.md, "Device runs of 2026-12-06 (session 14)").
# Session 13 shipped the VAE decoder's colour fine-tune (colours kept 37 -> 77 %, perfect-DiT ceiling 47.6 -> 63.6)
# and found the DiT to be the limit: its own decoded videos score 38.9 on attributes where the true latents score
# 60.4. Two runs, side by side on the one GPU:
#   align14  `vist3a align` of the shipped DiT on the tuned VAE (rewards consistency + world colour + relation, the
#            judge logged). Sessions 6 and 8 aligned through the old decoder, which folded the palette onto three
#            colours, so the colour and relation rewards could barely see what the captions asked for.
#   rgbdec   the re-stitch with --student-rgb decoded to its full 600 steps (session 13 stopped it at 379).
#
# One call per PHASE, back to back on one warm machine (it goes back 30 s after a call ends). Carry .whl and .carry
# (text_cache.safetensors.gz: `vist3a align --model mini --world 192 --write-text-cache
# .carry/text_cache.safetensors --out /tmp/x && gzip -9 .carry/text_cache.safetensors`; 2.8 MB, so tree + .whl +
# .carry stay under the 64 MiB carry limit) in every call. With the slimmed wheels of make_wheels.sh (2.9 MB) a cache
# of --world 512 (7.3 MB) fits too: set WORLD=512 to match it.
#   PHASE=1  gsplat build; align14 || world set + layer search + rgbdec
#   PHASE=2  align14 resumed || rgbdec resumed to 600 steps; packs the aligned DiT (merged) and the stitched decoder
#   PHASE=3  align14 resumed; packs the aligned DiT
# RESTITCH=0 runs the alignment alone (when the session's device time is short). WORLD_SEED sets the rollout
# captions' world seed (the text cache must be written with the same --world-seed).
# Then on the CPU: scripts/pack_mini_candidate.py --transformer .../align14/wan_mini/transformer (or --stitched
# .../pk) --out runs/cand/NAME; with VIST3A_MINI_ASSETS on it, `vist3a eval text-to-3d --model mini --world 24` at
# the default and 777 generation seeds (the shipped set: 40.1 / 43.1, session 14).
set -uo pipefail
source scripts/device/mini_setup.sh
R=runs/mini; mkdir -p $R; t0=$(date +%s); B=${BUDGET:-540}
A=src/vist3a/assets/mini
ALIGN_RUN=align14 ALIGN_WORLD=${WORLD:-192} ALIGN_SEED=${WORLD_SEED:-0}
source scripts/device/mini_recipes.sh
[ -f .carry/text_cache.safetensors.gz ] && gunzip -kf .carry/text_cache.safetensors.gz
[ -f .carry/text_cache.safetensors ] || { echo "carry .carry (text_cache.safetensors.gz) with this call"; exit 2; }
build_gsplat > $R/gsplat.log 2>&1 || { echo "gsplat build failed"; tail -5 $R/gsplat.log; }
P=${PHASE:-1}
[ "$P" = 1 ] || [ -d $R/align14 ] || { echo "a fresh machine: PHASE=1's runs are gone; rerun PHASE=1"; exit 3; }
OMP_NUM_THREADS=6 $ALIGN --minutes $(left 40) > $R/align14.$P.log 2>&1 &
STITCH_EXTRA="--loss-weight depth_grad=0.05 --student-rgb decoded"
if [ "${RESTITCH:-1}" = 0 ]; then
  :  # the alignment alone (a short device budget)
elif [ "$P" = 1 ]; then
  stitch rgbdec $A/anysplat-mini $(left 45)
elif [ "$P" = 2 ]; then
  OMP_NUM_THREADS=6 stitch_train rgbdec $A/anysplat-mini $(left 45)
fi
wait
for f in $R/align14.$P.log $(ls -t $R/stitch_rgbdec*.log 2>/dev/null | head -1); do echo "== $f"; last $f; done
mkdir -p $R/pk
[ -f $R/stitch_rgbdec/stitched.json ] && cp $R/stitch_rgbdec/stitched.* $R/pk/
# the aligned DiT as it stands after this call (each call's --minutes ends with the EMA-merged export)
rm -rf $R/pk/align14_p* && mkdir -p $R/pk/align14_p$P
for f in wan_mini/transformer lora_ema summary.json tb; do [ -e $R/align14/$f ] && cp -r $R/align14/$f $R/pk/align14_p$P/; done
keep=(); for f in $R/pk $R/search_rgbdec/report.json $R/search_rgbdec/report.md $R/*.log; do [ -e $f ] && keep+=($f); done
pack p$P "${keep[@]}"
echo "total $(( $(date +%s) - t0 )) s"
