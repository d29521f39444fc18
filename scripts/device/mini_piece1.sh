#!/usr/bin/env bash
# Mini model, device piece 1 (issue 9): the video VAE and anysplat-mini train side by side on one H100
# (each alone leaves most of the GPU idle). Both stop after their time budget with a checkpoint and an
# fp16 export; the run folders stay on the warm machine for `--resume`, and the exports come back in $OUT.
set -uo pipefail
source scripts/device/mini_setup.sh
R=${RUNS:-runs/mini}; mkdir -p $R
python3 -m vist3a world train-mini --stage vae --out $R/vae --steps 1000 --batch 4 --lr 3e-4 --warmup 100 \
  --eval-every 250 --eval-scenes 16 --minutes ${VAE_MIN:-7.3} > $R/vae.log 2>&1 &
vae=$!
build_gsplat
python3 -m vist3a world train-mini --stage recon --out $R/recon --steps 2000 --batch 4 --lr 3e-4 --warmup 100 \
  --frames 25 --context 13 --eval-every 250 --eval-scenes 8 --minutes ${RECON_MIN:-5.3} > $R/recon.log 2>&1 &
rec=$!
wait $vae; echo "vae exit $?"; wait $rec; echo "recon exit $?"
tail -c 1500 $R/vae.log | tr '\r' '\n' | tail -5; tail -c 1500 $R/recon.log | tr '\r' '\n' | tail -5
cat $R/*/metrics.json | grep -A4 '"eval"'
pack piece1 $R/vae/wan_mini $R/vae/metrics.json $R/vae/tb $R/recon/anysplat_mini $R/recon/metrics.json $R/recon/tb $R/*.log
