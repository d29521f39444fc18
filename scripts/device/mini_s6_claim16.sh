#!/usr/bin/env bash
# Session 6, last device call: the claim table (issue 9) on 16 held-out scenes for the shipped stitched decoder
# (150 LoRA steps) and the 415-step candidate from this session's phase 1 (`cand_S/stitched-mini`: carried as an
# untracked folder; it shares the shipped VAE and anysplat-mini). Carry .whl_lite (no gsplat: renders use the
# PyTorch renderer on CUDA, no 90 s JIT) — with the 54 MB of tracked files there is no room for more.
set -uo pipefail
WHL=.whl_lite source scripts/device/mini_setup.sh
A=src/vist3a/assets/mini; R=$OUT; t0=$(date +%s)  # straight to $OUT: a timed-out call keeps what finished
claim() {  # claim NAME STITCHED_DIR
  python3 benchmarks/mini_claim.py --video-weights $A/wan-mini --recon-weights $A/anysplat-mini \
    --stitched-weights $2 --scenes ${SCENES:-16} --alphas 0,0.1,0.3 --no-lpips --device cuda \
    --out $R/claim16_$1.json --md $R/claim16_$1.md > $R/claim16_$1.log 2>&1
}
claim shipped $A/stitched-mini &
claim s415 cand_S/stitched-mini
wait
for n in shipped s415; do echo "== $n"; tail -c 400 $R/claim16_$n.log; sed -n 1,12p $R/claim16_$n.md; done
echo "total $(( $(date +%s) - t0 )) s"
