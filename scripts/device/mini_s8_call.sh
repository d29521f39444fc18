#!/usr/bin/env bash
# Mini model, next device session (written 2026-12-03 at the end of session 7; plan: docs/mini.md, "Next device
# session"). Session 7 showed that anysplat-mini's camera head predicts a static camera (its rotation errors
# equal, scene by scene, those of "every view = view 0"), while on the CPU the same head learns cameras in a few
# hundred geometry-only steps (benchmarks/camera_overfit.py). Geometry-only steps (w_render = w_mse = 0) skip
# the rasteriser, so this session gives the camera head several thousand of them, then lets the rendering
# loss repair the Gaussian head, then re-stitches on the result.
#
# One call per PHASE, back to back on one warm machine (runs/ and the installed wheels persist between calls;
# carried paths do NOT: session 7's third alignment piece died on a cache carried only in the call before).
# The machine goes back 30 s after a call ends: issue the next call at once.
#
# Carry: `.whl` (7.1 MB, scripts/device/make_wheels.sh) in PHASE=1, and `.carry` — holding only
# text_cache.safetensors.gz (4.5 MB; `vist3a align --model mini --world 256 --write-text-cache
# .carry/text_cache.safetensors --out runs/align && gzip .carry/text_cache.safetensors`) — in every call. With
# the 54.5 MB tracked tree that is 66.1 of the 67.1 MB (64 MiB) carry limit.
#
#   PHASE=1  the camera proxy (benchmarks/camera_overfit.py) at 224², four recipes || align the shipped DiT
#   PHASE=2  recon --init shipped, geometry only (camera weight CAM, default 5; with the proxy's best recipe if one
#            left the static camera — e.g. EXTRA="--set ..." once the stage has that option) || align resumed
#   PHASE=3  align resumed || stitch train on the new recon (depth_grad DG); claim table on 16 scenes; pack the
#            candidates (recon, stitched, aligned transformer/ + lora_ema/)
# Each phase ends within BUDGET seconds (default 540; PHASE=3 BUDGET=470 if the start was slow).
set -uo pipefail
source scripts/device/mini_setup.sh
R=runs/mini; mkdir -p $R; t0=$(date +%s); B=${BUDGET:-540}; DG=${DG:-0.05}; CAM=${CAM:-5}
A=src/vist3a/assets/mini
source scripts/device/mini_recipes.sh
STITCH_EXTRA="--loss-weight depth_grad=$DG"
GEO="--set w_render=0 --set w_mse=0 --set w_camera=$CAM"
warm_or_phase1
need_cache() {  # the text cache comes gzipped (carry limit); the alignment reads it unpacked
  [ -f .carry/text_cache.safetensors.gz ] && gunzip -kf .carry/text_cache.safetensors.gz
  [ -f .carry/text_cache.safetensors ] || { echo "carry .carry (text_cache.safetensors.gz) with this call"; exit 2; }
}
case ${PHASE:-1} in
1)
  need_cache
  build_gsplat  # the stage's held-out evaluation renders
  $ALIGN --minutes $(left 40) > $R/align.1.log 2>&1 &
  # the camera proxy at the real size (16x16 tokens; the CPU's 56² runs had 4x4), four recipes side by side:
  # does any leave the static camera on held-out clips? (docs/mini.md, session 7)
  CF="python3 benchmarks/camera_overfit.py --scenes 512 --eval-scenes 16 --measure 8 --size 224 --frames 8
      --context 5 --batch 8 --every 250 --device cuda"
  for v in "base" "ls0.1 --layerscale 0.1" "ls1 --layerscale 1.0" "shipped --init shipped"; do
    set -- $v; n=$1; shift
    timeout $(python3 -c "print(int($B - 60 - ($(date +%s) - $t0)))") $CF --steps 3000 "$@" \
      --out $R/camfit_$n.json > $R/camfit_$n.log 2>&1 &
  done
  wait
  for f in align.1 camfit_base camfit_ls0.1 camfit_ls1 camfit_shipped; do echo "== $f"; last $R/$f.log; done
  pack p1 $R/camfit_*.json $R/align/summary.json $R/*.log
  ;;
2)
  need_cache
  $ALIGN --minutes $(left 40) > $R/align.2.log 2>&1 &
  RECON_STEPS=20000 recon --minutes $(left 40) $GEO ${EXTRA:-} > $R/recon.2.log 2>&1
  wait
  for f in recon.2 align.2; do echo "== $f"; last $R/$f.log; done
  pack p2 $R/recon/metrics.json $R/align/summary.json $R/*.log
  ;;
3)
  need_cache
  $ALIGN --minutes $(left 150) > $R/align.3.log 2>&1 &
  stitch new $R/recon/anysplat_mini $(left 190)
  claim new $R/recon/anysplat_mini $R/stitch_new
  wait
  for f in align.3 stitch_new claim16_new; do echo "== $f"; last $R/$f.log; done
  sed -n 3,8p $R/claim16_new.md
  C=$R/cand; mkdir -p $C/new/stitched-mini $C/aligned
  cp -r $R/recon/anysplat_mini $C/new/anysplat-mini && cp $R/stitch_new/stitched.* $C/new/stitched-mini/
  cp -r $R/align/wan_mini/transformer $R/align/lora_ema $C/aligned/
  pack p3 $C $R/claim16_* $R/align/summary.json $R/recon/metrics.json $R/*.log
  ;;
esac
echo "total $(( $(date +%s) - t0 )) s"
