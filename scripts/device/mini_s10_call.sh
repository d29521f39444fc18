#!/usr/bin/env bash
# Mini model, next device session (written 2026-12-04 at the end of session 9; plan: docs/mini.md, "Device runs of
# 2026-12-04 (session 9)"). Session 9 found that anysplat-mini's camera head starts to measure orbits once it has
# ~1600 geometry-only steps on the world's mix (6 of 10 held-out orbits 20–45° below the static camera's 112.5°),
# and that several training processes side by side on the one GPU ran ten times slower in all than one alone
# (2.1 s/step each against 0.22 s/step). So: ONE training process at a time, long runs, and the weights pulled from
# the latest checkpoint whatever happens to the run's own final evaluation (one hung past the call's limit).
#
# One call per PHASE, back to back on one warm machine (runs/ and the installed wheels persist between calls;
# carried paths do not). The machine goes back 30 s after a call ends: issue the next call at once.
# Carry `.whl` (scripts/device/make_wheels.sh) in PHASE=1.
#
#   PHASE=1  g1: recon --init shipped, geometry-only on the world's mix, 8 frames / 5 context (session 9's c1a
#            recipe), gsplat building beside it at low priority on 4 cores
#   PHASE=2  g1 resumed with the rendering terms on every 4th step (geometry-only steps cost NVS: 14.2 → 12.8 dB on
#            the CPU evaluation after 1596 of them), so appearance is kept while the camera keeps learning
#   PHASE=3  re-stitch (layer search + LoRA self-distillation) and the claim table on g1; candidates packed
#   PHASE=vae  (budget permitting, else the next session) the VAE decoder's colour fine-tune on whole 13-frame
#            clips with the encoder frozen, then benchmarks/vae_colour_probe.py at frames 0 and 6
# Every phase ends with benchmarks/recon_camera_eval.py on 32 held-out clips (per motion, against the static
# camera). Each phase ends within BUDGET seconds (default 540).
set -uo pipefail
source scripts/device/mini_setup.sh
R=runs/mini; mkdir -p $R; t0=$(date +%s); B=${BUDGET:-540}
A=src/vist3a/assets/mini
source scripts/device/mini_recipes.sh
STITCH_EXTRA="--loss-weight depth_grad=0.05"
warm_or_phase1
case ${PHASE:-1} in
1)
  (MAX_JOBS=4 nice -n 19 bash -c "$(declare -f build_gsplat); build_gsplat" > $R/gsplat.log 2>&1 &)
  g1 75 --set w_render=0 --set w_mse=0
  echo "== gsplat"; last $R/gsplat.log
  pack p1 $R/cam_g1_p1.json $R/g1/metrics.json $R/*.log
  ;;
2)
  g1 75 --set w_render=1 --set w_mse=1 --set render_every=4 --resume
  pack p2 $R/cam_g1_p2.json $R/g1/metrics.json $R/*.log
  ;;
3)
  python3 scripts/device/ckpt_weights.py $R/g1 $R/g1/weights
  stitch g1 $R/g1/weights $(left 120)
  claim g1 $R/g1/weights $R/stitch_g1
  for f in search_g1 stitch_g1 claim16_g1; do echo "== $f"; last $R/$f.log; done
  sed -n 3,8p $R/claim16_g1.md
  C=$R/cand; mkdir -p $C/g1/stitched-mini
  cp -r $R/g1/weights $C/g1/anysplat-mini && cp $R/stitch_g1/stitched.* $C/g1/stitched-mini/
  pack p3 $C $R/claim16_* $R/cam_g1_*.json $R/g1/metrics.json $R/*.log
  ;;
vae)  # the decoder colour fine-tune (session 9, docs/mini.md): whole 13-frame clips, encoder frozen; for a
      # session with budget left over, or the one after (needs only the wheels: PHASE=1's machine or a fresh one)
  OMP_NUM_THREADS=8 timeout $((B - 60)) python3 -m vist3a world train-mini --stage vae --init shipped --out $R/vaeft \
    --steps 100000 --batch 4 --frames 13 --size 256 --lr 1.5e-4 --warmup 20 --eval-scenes 8 --eval-every 100000 \
    --ckpt-every 200 --object-weight 3 --set decoder_only=1 --set chroma_weight=2 --minutes $(left 240) \
    > $R/vaeft.log 2>&1
  echo "== vaeft"; last $R/vaeft.log
  python3 benchmarks/vae_colour_probe.py --vae-weights shipped $R/vaeft/wan_mini --scenes 40 --frame 0 6 \
    --out $R/vae_colour.json 2>&1 | grep -v INFO | grep -v "^      "
  pack pv $R/vaeft/wan_mini $R/vaeft/metrics.json $R/vae_colour.json $R/vaeft.log
  ;;
esac
echo "total $(( $(date +%s) - t0 )) s"
