#!/usr/bin/env bash
# Mini model, device piece 4 (issue 10): latent cache + first DiT piece, on a fresh machine.
# Carry: .whl_lite (no gsplat: not needed here), .minilm16 (fp16 MiniLM, VIST3A_MINILM), .carry/vae/wan_mini.
set -uo pipefail
WHL=.whl_lite source scripts/device/mini_setup.sh
export VIST3A_MINILM=$PWD/.minilm16
R=runs/mini; mkdir -p $R; t0=$(date +%s)
DIT="python3 -m vist3a world train-mini --stage dit --vae .carry/vae/wan_mini --out $R/dit --cache-scenes ${SCENES:-3000} --steps ${STEPS:-8000} --batch 32 --lr 3e-4 --warmup 200 --eval-every 1000 --eval-scenes 32"
$DIT --cache-only > $R/dit_cache.log 2>&1; echo "cache exit $? after $(( $(date +%s) - t0 )) s"; tail -c 400 $R/dit_cache.log
left=$(python3 -c "print(round(max(1.0, (${BUDGET:-520} - ($(date +%s) - $t0)) / 60 - 0.6), 2))")
echo "training for $left min"
$DIT --minutes $left --resume > $R/dit1.log 2>&1; echo "dit exit $?"; tail -c 600 $R/dit1.log
pack piece4 $R/dit/wan_mini $R/dit/metrics.json $R/dit/tb $R/dit*.log
