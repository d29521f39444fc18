#!/usr/bin/env bash
# Mini model, next device session (written 2026-12-03 at the end of session 6; plan: docs/mini.md, "Next device
# session"). One call per PHASE, back to back on one warm machine (runs/ and the installed wheels persist between
# calls; the machine goes back 30 s after a call ends, so issue the next call at once). A one-GPU machine counts
# its whole held time (session 6), so 30 device-minutes are ~3 calls of 9 minutes after a ~1.5-minute start.
#
#   PHASE=1  carry .whl (13 MB; with the 54 MB of tracked files that is the whole 64 MiB):
#            recon continued from the shipped anysplat-mini (session 6's 530-step run died with its machine)
#            || world set -> layer search -> stitch train on the *shipped* recon with the depth-gradient weight
#            raised (DG, default 0.05; the paper's 0.005 left the stitched depth smoothed) — the same recipe as
#            session 6's 415-step run otherwise, so the two compare directly
#   PHASE=2  carry .carry/text_cache.safetensors (12.5 MB; made on the CPU by `vist3a align --model mini --world
#            256 --write-text-cache .carry/text_cache.safetensors --out runs/align`):
#            align the shipped DiT || recon resumed
#   PHASE=3  nothing to carry: align resumed || stitch train on the phase-1/2 recon (DG weight); claim table on
#            16 scenes for both stitched decoders; pack the candidates — the aligned DiT's transformer/ and
#            lora_ema/ (session 6 forgot lora_ema), the new recon, both stitched folders — for the CPU
#            evaluations here (bench_align_mini.py before/after, eval text-to-3d, mini_claim_depth.py)
# Each phase ends within BUDGET seconds (default 540; give PHASE=3 BUDGET=480 if the start was slow).
# Ran in session 7 (docs/mini.md): PHASE=3's alignment stopped at once — carried paths do not persist between
# calls, so .carry was gone; mini_s8_call.sh checks for the cache and carries it (gzipped) in every call.
set -uo pipefail
source scripts/device/mini_setup.sh
R=runs/mini; mkdir -p $R; t0=$(date +%s); B=${BUDGET:-540}; DG=${DG:-0.05}
A=src/vist3a/assets/mini
source scripts/device/mini_recipes.sh
STITCH_EXTRA="--loss-weight depth_grad=$DG"
warm_or_phase1
case ${PHASE:-1} in
1)
  build_gsplat
  recon --minutes $(left 45) > $R/recon.1.log 2>&1 &
  stitch dg_shipped $A/anysplat-mini $(left 60)
  wait
  for f in recon.1 stitch_dg_shipped; do echo "== $f"; last $R/$f.log; done
  pack p1 $R/recon/metrics.json $R/stitch_dg_shipped/stitched.safetensors $R/stitch_dg_shipped/stitched.json \
    $R/search_dg_shipped/report.csv $R/*.log
  ;;
2)
  [ -f .carry/text_cache.safetensors ] || { echo "carry .carry/text_cache.safetensors"; exit 2; }
  $ALIGN --minutes $(left 40) > $R/align.2.log 2>&1 &
  recon --resume --minutes $(left 40) > $R/recon.2.log 2>&1
  wait
  for f in recon.2 align.2; do echo "== $f"; last $R/$f.log; done
  pack p2 $R/recon/metrics.json $R/align/summary.json $R/*.log
  ;;
3)
  $ALIGN --minutes $(left 150) > $R/align.3.log 2>&1 &
  al=$!
  stitch dg_recon $R/recon/anysplat_mini $(left 190)
  claim dg_shipped $A/anysplat-mini $R/stitch_dg_shipped &
  claim dg_recon $R/recon/anysplat_mini $R/stitch_dg_recon
  wait
  for f in align.3 stitch_dg_recon claim16_dg_shipped claim16_dg_recon; do echo "== $f"; last $R/$f.log; done
  sed -n 3,8p $R/claim16_dg_shipped.md $R/claim16_dg_recon.md
  # candidates, each a drop-in folder for VIST3A_MINI_ASSETS (the VAE is the shipped one throughout)
  C=$R/cand; mkdir -p $C/dg_shipped $C/dg_recon/stitched-mini $C/aligned
  cp -r $R/stitch_dg_shipped $C/dg_shipped/stitched-mini
  cp -r $R/recon/anysplat_mini $C/dg_recon/anysplat-mini && cp $R/stitch_dg_recon/stitched.* $C/dg_recon/stitched-mini/
  cp -r $R/align/wan_mini/transformer $R/align/lora_ema $C/aligned/
  rm -rf $C/*/stitched-mini/checkpoints $C/*/stitched-mini/tb
  pack p3 $C $R/claim16_* $R/align/summary.json $R/recon/metrics.json $R/*.log
  ;;
esac
echo "total $(( $(date +%s) - t0 )) s"
