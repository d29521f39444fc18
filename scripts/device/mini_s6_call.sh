#!/usr/bin/env bash
# Mini model, next device session (written 2026-12-03, session 5, which had no device time left): improve the
# shipped set where docs/mini.md's model card says it is weakest, and run the alignment issue 10 asks for.
# One script, one call per PHASE, back to back on one warm machine (runs/ and the carried .whl persist between
# calls; the machine goes back 30 s after a call ends, so issue the next call at once).
#
#   PHASE=1  carry .whl (diffusers, gsplat, plyfile, importlib_metadata, zipp; 13 MB — with the 54 MB of tracked
#            files that is the whole 64 MiB): recon continued from the shipped anysplat-mini, alone-ish
#            (its camera head is still at the mean pose after 462 steps) || world set -> layer search -> stitch
#            train 500 steps on the *shipped* recon (150 steps left depth worse than the teacher's: AbsRel 0.655
#            vs 0.506)
#   PHASE=2  carry .carry/text_cache.safetensors (12.5 MB: `vist3a align --model mini --world 256
#            --write-text-cache .carry/text_cache.safetensors --out runs/align` on the CPU; no MiniLM needed
#            there): align the shipped DiT (rewards consistency,world,relation; judge logged) || recon resumed
#   PHASE=3  nothing new to carry: align resumed || stitch train on the phase-2 recon (if its eval beats the
#            shipped one); then benchmarks/bench_align_mini.py before/after (16 held-out captions, 8 steps) and
#            the claim table on 16 scenes, and pack the candidates
# Ran in session 6 (2026-12-03): PHASE=1 and PHASE=2; PHASE=3 did not fit the device time left (results and
# what to run next: docs/mini.md, "Device runs of 2026-12-03").
# Each phase ends within ~9 minutes (BUDGET seconds, default 540). Every command line was smoke-run on the CPU
# with tiny sizes on 2026-12-03 (recon --init shipped + --resume, search, stitch train, align with the text cache,
# bench_align_mini before/after, mini_claim with LPIPS absent).
set -uo pipefail
source scripts/device/mini_setup.sh
R=runs/mini; mkdir -p $R; t0=$(date +%s); B=${BUDGET:-540}
A=src/vist3a/assets/mini
source scripts/device/mini_recipes.sh  # recon / stitch / ALIGN as they ran (no STITCH_EXTRA)
warm_or_phase1
case ${PHASE:-1} in
1)
  build_gsplat
  recon --minutes $(left 45) > $R/recon.1.log 2>&1 &
  stitch shipped $A/anysplat-mini $(left 60)
  wait
  for f in recon.1 stitch_shipped; do echo "== $f"; last $R/$f.log; done
  grep -A7 "layer " $R/search_shipped.log | head -8
  pack p1 $R/recon/metrics.json $R/stitch_shipped/stitched.safetensors $R/stitch_shipped/stitched.json \
    $R/search_shipped/report.csv $R/*.log
  ;;
2)
  [ -f .carry/text_cache.safetensors ] || { echo "carry .carry/text_cache.safetensors"; exit 2; }
  $ALIGN --minutes $(left 40) > $R/align.2.log 2>&1 &
  recon --resume --minutes $(left 40) > $R/recon.2.log 2>&1
  wait
  for f in recon.2 align.2; do echo "== $f"; last $R/$f.log; done
  pack p2 $R/recon/anysplat_mini $R/recon/metrics.json $R/align/summary.json $R/*.log
  ;;
3)
  $ALIGN --minutes $(left 200) > $R/align.3.log 2>&1 &
  al=$!
  stitch recon $R/recon/anysplat_mini $(left 240)
  wait $al
  for f in align.3 stitch_recon; do echo "== $f"; last $R/$f.log; done
  # candidates: the aligned DiT over the shipped VAE; the new recon with its own stitched decoder
  mkdir -p $R/cand/stitched-mini && cp -r $R/recon/anysplat_mini $R/cand/anysplat-mini \
    && cp $R/stitch_recon/stitched.* $R/cand/stitched-mini/ && cp -r $R/align/wan_mini $R/cand/wan-mini
  python3 benchmarks/bench_align_mini.py --captions 16 --sweep 8 --consistency-views 0 \
    --dit before=$A/wan-mini --dit after=$R/align/wan_mini --out $R/align_before_after.json > $R/bam.log 2>&1
  tail -8 $R/bam.log
  python3 benchmarks/mini_claim.py --video-weights $A/wan-mini --recon-weights $R/cand/anysplat-mini \
    --stitched-weights $R/cand/stitched-mini --scenes 16 --alphas 0,0.1,0.3 --device cuda \
    --out $R/claim_16.json --md $R/claim_16.md > $R/claim.log 2>&1
  tail -20 $R/claim.log
  pack p3 $R/cand $R/align_before_after.json $R/align_before_after.md $R/claim_16.json $R/claim_16.md \
    $R/align/summary.json $R/recon/metrics.json $R/*.log
  ;;
esac
echo "total $(( $(date +%s) - t0 )) s"
