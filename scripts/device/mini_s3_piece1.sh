#!/usr/bin/env bash
# Mini model, session 3 piece 1 (issue 9), one warm H100: two VAE recipes side by side (both lr 1e-4, the
# rate at which a CPU study kept colour, docs/mini.md "VAE colour"), A from the shipped weights, B from
# scratch, plus anysplat-mini with the diagnosed recipe (GT-camera placement, log-depth, clip cache).
# Repeat with RESUME=1 on the same warm machine; exports come back in $OUT.
set -uo pipefail
source scripts/device/mini_setup.sh
R=${RUNS:-runs/mini}; mkdir -p $R; t0=$(date +%s)
RES=${RESUME:+--resume}; M=${MIN:-7.8}
VAE="python3 -m vist3a world train-mini --stage vae --steps 20000 --batch 4 --lr 1e-4 --warmup 100 --object-weight 3 \
  --eval-every 300 --eval-scenes 16 --ckpt-every 300"
$VAE --out $R/vaeA ${RES:---init shipped} --minutes $M > $R/vaeA.log 2>&1 &
a=$!
$VAE --out $R/vaeB $RES --minutes $M > $R/vaeB.log 2>&1 &
b=$!
build_gsplat
left=$(python3 -c "print(round($M - ($(date +%s) - $t0) / 60, 2))")
python3 -m vist3a world train-mini --stage recon --out $R/recon2 --steps 8000 --batch 8 --frames 8 --context 5 \
  --size 224 --lr 2e-4 --warmup 300 --train-scenes 2000 --eval-scenes 16 --eval-every 500 --ckpt-every 500 \
  --minutes $left --set cache=1 $RES > $R/recon2.log 2>&1 &
r=$!
wait $a; echo "vaeA exit $?"; wait $b; echo "vaeB exit $?"; wait $r; echo "recon2 exit $?"
for f in vaeA vaeB recon2; do echo "== $f"; tail -c 300 $R/$f.log | tr '\r' '\n' | tail -2; python3 -c "
import json,sys; m=json.load(open('$R/$f/metrics.json')); [print(e) for e in m.get('evals', m.get('eval_history', []))[-4:]]; print(m.get('eval'))" 2>&1 | tail -5; done
pack s3p1 $R/vaeA/wan_mini $R/vaeB/wan_mini $R/vaeA/metrics.json $R/vaeB/metrics.json $R/recon2/anysplat_mini \
  $R/recon2/metrics.json $R/*.log
echo "total $(( $(date +%s) - t0 )) s"
