#!/usr/bin/env bash
# Mini model, next session's machine 1 (issue 9): the VAE continues from the shipped one (session 3's run A,
# same recipe) while anysplat-mini continues from session 3's recon2 export twice, at camera-loss weight 1 and 5
# (the camera head still gave the mean pose after 1000 steps; the overfit check shows it can learn).
# Carry: .whl (gsplat) and .carry/recon2 (= runs/mini_s3/assets/anysplat-mini). Run it three times back to back
# on one warm machine, the 2nd and 3rd with RESUME=1; each call stays under 10 minutes (MIN of training).
set -uo pipefail
source scripts/device/mini_setup.sh
R=${RUNS:-runs/mini}; mkdir -p $R; t0=$(date +%s); M=${MIN:-8.2}
if [ -n "${RESUME:-}" ]; then VI=--resume; RI=--resume; else VI="--init shipped"; RI="--init .carry/recon2"; fi
python3 -m vist3a world train-mini --stage vae $VI --object-weight 3 --out $R/vae --steps 20000 --batch 4 --lr 1e-4 \
  --warmup 100 --eval-every 300 --eval-scenes 16 --ckpt-every 300 --minutes $M > $R/vae.log 2>&1 &
build_gsplat
left=$(python3 -c "print(round($M - ($(date +%s) - $t0) / 60, 2))")
for W in 1 5; do
  python3 -m vist3a world train-mini --stage recon $RI --out $R/recon_w$W --steps 8000 --batch 8 --frames 8 --context 5 \
    --size 224 --lr 2e-4 --warmup 100 --train-scenes 2000 --eval-scenes 16 --eval-every 500 --ckpt-every 500 \
    --minutes $left --set cache=1 --set w_camera=$W > $R/recon_w$W.log 2>&1 &
done
wait
for f in vae recon_w1 recon_w5; do echo "== $f"; tail -c 400 $R/$f.log | tr '\r' '\n' | tail -1; done
pack s4p1 $R/vae/wan_mini $R/vae/metrics.json $R/recon_w1/anysplat_mini $R/recon_w5/anysplat_mini \
  $R/recon_w1/metrics.json $R/recon_w5/metrics.json $R/*.log
echo "total $(( $(date +%s) - t0 )) s"
