#!/usr/bin/env bash
# Mini model, device session 9 (rewritten 2026-12-04 at the start of session 9; plan: docs/mini.md, "Device runs
# of 2026-12-04"). Session 8's camera proxies had 250 steps each (six processes rendering their own clips on one
# machine), and pans learned where the world's mix did not. A pan, though, shows in a single frame (the first view
# frames the objects, a turned view does not), while an orbit's rotation shows only by comparing views: those 250
# steps cannot tell "the head cannot compare views" from "it has not been trained long enough to". Every recon
# run so far had fewer than 1000 steps. This session trains the recon stage's geometry losses (no rasteriser:
# cheap steps) for two full calls, on the clip cache, in three variants side by side:
#   c1a  the world's mix, 8 frames / 5 context (the stage's recipe so far)
#   c1b  the world's mix, 13 frames / 13 context (what the pipeline feeds: 13 decoded frames; an orbit's
#        neighbouring views 28° apart instead of 90°)
#   c1c  the mix without orbits (arc, dolly, pan, truck, rise), 8 / 5 — the fallback curriculum
# All three evaluate on the world's mix (16 held-out clips), each against its own static camera.
#
# One call per PHASE, back to back on one warm machine (runs/ and the installed wheels persist between calls;
# carried paths do not). The machine goes back 30 s after a call ends: issue the next call at once.
# Carry `.whl` (scripts/device/make_wheels.sh) in PHASE=1. No alignment this session (docs/mini.md, session 8:
# with a static-camera reconstructor its consistency reward cannot reward an orbit).
#
#   PHASE=1  c1a, c1b, c1c from the shipped weights (gsplat builds beside them at low priority, for the evals)
#   PHASE=2  the three resumed
#   PHASE=3  the run whose last evaluation is lowest against its static camera, if 15 % below it
#            (scripts/device/camfit_pick.py --best-stage): the rendering loss from it (same views, same motions)
#            beside a re-stitch + claim table on it; otherwise the re-stitch + claim table of the lowest one
# Each phase ends within BUDGET seconds (default 540).
set -uo pipefail
source scripts/device/mini_setup.sh
R=runs/mini; mkdir -p $R; t0=$(date +%s); B=${BUDGET:-540}; CAM=${CAM:-5}
A=src/vist3a/assets/mini
source scripts/device/mini_recipes.sh
STITCH_EXTRA="--loss-weight depth_grad=0.05"
GEO="--set w_render=0 --set w_mse=0 --set w_camera=$CAM --set cache=1"
stage() {  # stage OUT INIT FRAMES CONTEXT [--set ...]: a geometry-only recon run of at most the time left
  local out=$1 init=$2 f=$3 c=$4; shift 4
  python3 -m vist3a world train-mini --stage recon --init $init --out $out --steps 40000 --batch 8 --frames $f \
    --context $c --size 224 --lr 2e-4 --warmup 50 --train-scenes 2000 --eval-scenes 16 --eval-every 500 \
    --ckpt-every 500 --minutes $(left 30) $GEO "$@"
}
moved() {  # did run $1's last evaluation put the camera below the static one by 15 %?
  python3 -c "
import json, sys
e = json.load(open('$1/metrics.json'))['evals'][-1]
print(f\"rot {e['rot_deg']:.1f} vs static {e['rot_deg_static']:.1f}\", file=sys.stderr)
sys.exit(0 if e['rot_deg'] < 0.85 * e['rot_deg_static'] else 1)"
}
if [ "${PHASE:-1}" != 1 ] && ! python3 -c "import diffusers, gsplat" 2>/dev/null; then
  echo "a fresh machine: phase 1's wheels (and runs/) are gone; carry .whl and rerun phase 1 first"; exit 3
fi
declare -A VIEWS=([c1a]="8 5" [c1b]="13 13" [c1c]="8 5")
declare -A MOT=([c1a]="" [c1b]="" [c1c]="--set motions=arc,dolly,pan,truck,rise")
geometry() {  # geometry NAME [--resume]
  stage $R/$1 shipped ${VIEWS[$1]} ${MOT[$1]} "${@:2}" > $R/$1.$PHASE.log 2>&1
}
report() { for n in c1a c1b c1c; do echo "== $n"; last $R/$n.$PHASE.log; moved $R/$n; done; }
case ${PHASE:-1} in
1)
  (nice -n 19 bash -c "$(declare -f build_gsplat); build_gsplat" > $R/gsplat.log 2>&1 &)  # for the evals
  for n in c1a c1b c1c; do geometry $n & done
  wait
  report; echo "== gsplat"; last $R/gsplat.log
  pack p1 $R/c1?/metrics.json $R/*.log
  ;;
2)
  for n in c1a c1b c1c; do geometry $n --resume & done
  wait
  report
  pack p2 $R/c1?/metrics.json $R/*.log
  ;;
3)
  P=$(python3 scripts/device/camfit_pick.py $R --best-stage c1a c1b c1c)
  echo "picked: $P"
  if [ "$P" != none ]; then
    python3 -m vist3a world train-mini --stage recon --init $R/$P/anysplat_mini --out $R/c3 --steps 20000 \
      --batch 8 --frames ${VIEWS[$P]% *} --context ${VIEWS[$P]#* } --size 224 --lr 2e-4 --warmup 50 \
      --train-scenes 2000 --eval-scenes 16 --eval-every 250 --ckpt-every 250 --set cache=1 \
      --set cache_dir=$R/$P/cache --set w_camera=$CAM ${MOT[$P]} --minutes $(left 200) > $R/c3.log 2>&1 &
  else
    P=$(python3 -c "
import json
r = {n: (lambda e: e['rot_deg'] / e['rot_deg_static'])(json.load(open(f'$R/{n}/metrics.json'))['evals'][-1])
     for n in ('c1a', 'c1b', 'c1c')}
print(min(r, key=r.get))")
    echo "none moved; re-stitching the lowest, $P"
  fi
  echo "$P" > $R/c3_from.txt
  stitch $P $R/$P/anysplat_mini $(left 190)
  claim $P $R/$P/anysplat_mini $R/stitch_$P
  wait
  for f in c3 stitch_$P claim16_$P; do [ -f $R/$f.log ] && { echo "== $f"; last $R/$f.log; }; done
  sed -n 3,8p $R/claim16_$P.md
  C=$R/cand; mkdir -p $C/$P/stitched-mini
  cp -r $R/$P/anysplat_mini $C/$P/anysplat-mini && cp $R/stitch_$P/stitched.* $C/$P/stitched-mini/
  [ -d $R/c3/anysplat_mini ] && cp -r $R/c3/anysplat_mini $C/c3-anysplat-mini
  pack p3 $C $R/claim16_* $R/c*/metrics.json $R/c3_from.txt $R/*.log
  ;;
esac
echo "total $(( $(date +%s) - t0 )) s"
