#!/usr/bin/env bash
# Mini model, the device session after session 16 (docs/mini.md, "Device runs of 2026-12-06 (session 16)").
# Session 16 found the several-object scenes lost in anysplat-mini itself (teacher ceiling 51.9 on 24 held-out
# captions; the stitched decoder on true latents 52.0) and trained `obj`: the shipped reconstructor continued 600 steps
# with object pixels weighted 4x in the rendering terms (--set object_weight=4). Its teacher ceiling is 61.9 (+10.0 ±
# 5.0 paired; several-object captions +12.6 ± 6.2), but the shipped stitched decoder's LoRA over it is level with the
# shipped set (-1.2 ± 4.0): the decoder must be distilled again from the new teacher. Session 16's device time ran out
# before that; this script redoes `obj` (its weights are not in git) and re-stitches on it.
#
# One call per PHASE, back to back on one warm machine (it goes back 30 s after a call ends). Carry .whl.
#   PHASE=1  gsplat build; obj (600 steps, ~4.6 min alone on an H100); weights exported; then `ws`: the shipped
#            stitched decoder continued over obj (`stitch train --init-stitched`, obj the teacher) for the rest
#   PHASE=2  ws resumed to WS_STEPS (default 300); the candidate set packed (anysplat-mini + stitched-mini)
#   PHASE=5  (added in session 17) --object-weight distillation over a candidate carried in place of the assets
#   PHASE=3  (optional) the from-scratch re-stitch on obj (`stitch` of mini_recipes.sh: search + 600 steps), as far as
#            the call gets; PHASE=4 resumes it and packs that candidate
#            OW=W distils with --object-weight W (session 17's finding: the plain loss leaves the teacher's objects out)
# Ran in session 17: PHASE 1-3 (docs/mini.md, "Device runs of 2026-12-06 (session 17)"); PHASE=5 got no machine.
# Next session: PHASE=1 SKIP_WS=1 (obj alone: session 17 found ws level), then PHASE=3 and PHASE=4 with OW=4,
# or (session 18, less device time) PHASE=1 SKIP_WS=1 SEARCH=1, then PHASE=4 OW=4 BUDGET=545 on the warm machine,
# or (session 18, one call) PHASE=1 OW=4 WS_STEPS=auto: obj, then ws with the object weight in the time left,
# then PHASE=5-like continuations only if the weight helps.
# Ran in session 19 (H200, 2026-12-07): PHASE=1 OW=4 WS_STEPS=auto BUDGET=530 (obj 600 steps, then ws-OW 284 steps),
# then PHASE=3 OW=4 STITCH_STEPS=480 BUDGET=500 on the warm machine (search + 480 object-weighted steps from scratch).
# Neither ships (docs/mini.md, session 19): the fresh decoder reaches the shipped one on true latents, 9 points below
# its teacher. Untried: a longer object-weighted distillation, e.g. PHASE=1 SKIP_WS=1 SEARCH=1, then
# PHASE=4 OW=4 STITCH_STEPS=1200 twice on the warm machine (the schedule spans both calls; ~1.6 step/s on the H200).
# Session 20 (H100, 2026-12-07; seven refused calls first): PHASE=6 CALL=1 CONT_STEPS=auto BUDGET=530 (session 19's
# decoder continued 612 object-weighted steps, lr 2e-4; the candidate carried in place of the assets), then on the
# warm machine PHASE 7's command (540 more steps, lr 1e-4; run as a plain command, BUDGET=420 here). Longer
# distillation gained at most 1.9 ± 2.3 on true latents; the stitch still loses 9 points to obj on the DiT's latents.
# Session 21 (H100): PHASE=1 SKIP_WS=1 GEN=1 BUDGET=530 trained obj (600 steps in 3:28) but wrote no clip (no MiniLM
# on the device: hence the text cache below). Then PHASE=8 on a fresh machine, obj carried in place of
# $A/anysplat-mini, .carry/gen_cache.safetensors.gz carried: GEN_N=450 GEN_K=3 OW=4 BUDGET=530 (1350 clips, 567
# steps; `gen21`: 41.0 in generation, +0.9 ± 4.0 vs shipped, -1.31 dB). Then gen21 carried in place of
# $A/stitched-mini too: PHASE=8 GEN_N=450 GEN_K=6 GEN_SEED=100000 GEN_DIR=gen_set2 RUN=gen2 (new clips, a new
# schedule), and on the warm machine PHASE=8 ... GEN_SEED=200000 GEN_DIR=gen_set3 INIT=runs/mini/gen2 RUN=gen3.
# gen23 ended level with its teacher in generation, but this obj was 3.9 points weaker than session 19's on the
# DiT's frames (docs/mini.md, session 21). Next: PHASE=1 SKIP_WS=1 TEACHER_EVAL=1 (obj + its measurement on the
# device; not yet run there: the CPU run of t3d_ceiling.py --text-cache worked), repeated (or with another
# --set object_weight) until a teacher beats 47.0, then PHASE=8 over it as above.
# Session 22 (H100): eleven refused starts left 654 s, so PHASE=9 (one call: set + obj + distillation) ran at
# BUDGET=500. The set (2700 clips) was written while gsplat compiled (76 s), but obj took 4:36 on that machine
# (2.17 step/s; session 21's 3:28), leaving 35 distillation steps. Plan as before: PHASE=1 SKIP_WS=1 TEACHER_EVAL=1
# (carry .whl + .carry/eval_cache.safetensors.gz; with the gen cache as well the carry is over 64 MiB), then PHASE=8
# on the warm machine; PHASE=9 only when a single call is left, and then with a second call to continue it.
# Session 23 (H100): obj22 (session 22's obj, kept on the CPU machine) carried in place of $A/anysplat-mini, so no
# device time went to retraining it; twelve refused starts left one call: PHASE=8 GEN_N=450 GEN_K=6 GEN_S=100 OW=4
# BUDGET=420 (393 s: 2700 clips, 411 steps at 1.96 step/s). The tree (54.5 MiB) + .whl + the gen cache is over the
# 64 MiB carry: move docs/images and docs/img out of the working tree for such calls (and back afterwards).
# Session 24: no call came (twelve refused starts, six lockouts, 1426 s); the plan stays: obj22 + gen23 (runs/cand/gen23)
# carried in place of $A/anysplat-mini and $A/stitched-mini, PHASE=8 GEN_N=450 GEN_K=6 GEN_SEED=100000
# GEN_DIR=gen_set2 RUN=gen2 OW=4, then INIT=runs/mini/gen2 RUN=gen3 on the warm machine.
# Session 25: four refused starts (451 s), then new machines were paused for the session; the plan is unchanged.
# Session 26 (H100, no refused start): the plan ran as three calls, 425 + 445 + 418 s, 1419 s of the budget:
# PHASE=8 GEN_N=450 GEN_K=6 GEN_SEED=100000 GEN_DIR=gen_set2 GEN_S=100 RUN=gen2 OW=4 BUDGET=520 (717 steps), then
# GEN_SEED=200000 GEN_DIR=gen_set3 INIT=runs/mini/gen2 RUN=gen3 (748) and GEN_SEED=300000 GEN_DIR=gen_set4
# INIT=runs/mini/gen3 RUN=gen4 BUDGET=500 (690) on the warm machine: gen23 + 2155 steps on 8100 new clips.
# Then on the CPU (scripts/eval_mini_candidate.sh): VIST3A_MINI_ASSETS on the candidate, `vist3a eval text-to-3d --model mini --world 24` at the default
# and 777 generation seeds, paired with benchmarks/t3d_paired.py against session 15's rows.
set -uo pipefail
source scripts/device/mini_setup.sh
R=runs/mini; mkdir -p $R; t0=$(date +%s); B=${BUDGET:-480}  # the 600 s call limit also counts start + wheels
A=src/vist3a/assets/mini
source scripts/device/mini_recipes.sh
OBJ=$R/obj/weights
ws() {  # ws MINUTES: the shipped stitched decoder continued over obj (session 11's distillation settings, lr 1e-4)
  python3 -m vist3a stitch train --video wan-mini --video-weights $A/wan-mini --recon anysplat-mini \
    --recon-weights $OBJ --init-stitched $A/stitched-mini --world 20000 --world-seed 3 --frames 13 --batch 4 \
    --steps ${WS_STEPS:-300} --lr 1e-4 --warmup 20 --ckpt-every 50 --minutes $1 --loss-weight depth_grad=0.05 \
    ${OW:+--object-weight $OW} --out $R/stitch_ws --resume >> $R/stitch_ws.log 2>&1
  echo "== ws"; last $R/stitch_ws.log
}
candidate() {  # candidate NAME STITCH_RUN: anysplat-mini (obj) + that stitched decoder, packed as NAME
  local C=$R/cand/$1; mkdir -p $C/stitched-mini
  rm -rf $C/anysplat-mini && cp -r $OBJ $C/anysplat-mini && cp $2/stitched.* $C/stitched-mini/
  pack $1 $C $R/*.log
}
gen_set() {  # gen_set SECONDS: PHASE 8's generated set (GEN_N world captions, seed 3), written for at most SECONDS
  # the device lacks MiniLM: the captions' embeddings travel as .carry/gen_cache.safetensors.gz (session 21: `vist3a
  # stitch generate-set --world 450 --world-seed 3 --out /tmp/x --write-text-cache .carry/gen_cache.safetensors`,
  # gzip -9: 6.4 MB, what the 64 MiB carry leaves), GEN_K clips per caption
  [ -f .carry/gen_cache.safetensors.gz ] && gunzip -kf .carry/gen_cache.safetensors.gz
  local tc=$([ -f .carry/gen_cache.safetensors ] && echo "--text-cache .carry/gen_cache.safetensors")
  timeout $1 python3 -m vist3a stitch generate-set --world ${GEN_N:-1500} --world-seed 3 --out $R/${GEN_DIR:-gen_set} \
    --seed ${GEN_SEED:-0} --per-caption ${GEN_K:-1} --batch-size ${GEN_BS:-32} --device ${DEV:-cuda} --no-progress $tc >> $R/gen_set.log 2>&1
  echo "== gen_set: $(ls $R/${GEN_DIR:-gen_set}/clip_*.safetensors 2>/dev/null | wc -l) clips"
}
train_obj() {  # obj (session 16's recipe): the shipped anysplat-mini continued 600 steps, object pixels weighted 4x in
  # the rendering terms (~3:30 on an H100); its weights exported to $OBJ
  local secs=$(python3 -c "print(int(min(330, $B - 40 - ($(date +%s) - $t0))))")
  OMP_NUM_THREADS=12 timeout $((secs + 60)) python3 -m vist3a world train-mini --stage recon --init shipped \
    --out $R/obj --steps 600 --batch 8 --frames 8 --context 5 --size 224 --lr 1e-4 --warmup 30 --train-scenes 2000 \
    --eval-scenes 16 --eval-every 100000 --ckpt-every 1000 --minutes $(python3 -c "print($secs / 60)") \
    --set w_camera=5 --set w_render=1 --set w_mse=1 --set cache=1 --set object_weight=4 > $R/obj.log 2>&1
  echo "== obj"; last $R/obj.log
  python3 scripts/device/ckpt_weights.py $R/obj $OBJ
}
distil() {  # PHASE 8's distillation on the generated set, GEN_STEPS steps (auto: sized to the time left)
  RW=$([ -d $OBJ ] && echo $OBJ || echo $A/anysplat-mini)
  # INIT=DIR (session 21): continue that stitched decoder (e.g. an earlier PHASE 8's run on this warm machine)
  START=$([ -d $R/search_obj ] && [ -z "${INIT:-}" ] && echo "--init $R/search_obj --lora r16,a16,d0.0,f0 --lr 3e-4 --warmup 50" \
    || echo "--init-stitched ${INIT:-$A/stitched-mini} --lr 1e-4 --warmup 20")
  # session 21 measured 2.5 step/s on an H100 (~25 s of loading first)
  [ "${GEN_STEPS:-auto}" = auto ] && GEN_STEPS=$(python3 -c "print(max(20, int(($B - 70 - ($(date +%s) - $t0)) * 2.2)))")
  local_run=${RUN:-stitch_gen}
  python3 -m vist3a stitch train --video wan-mini --video-weights $A/wan-mini --recon anysplat-mini --recon-weights $RW \
    $START --dataset generated:$R/${GEN_DIR:-gen_set} --frames 13 ${DEV:+--device $DEV} --batch 4 --steps $GEN_STEPS \
    --ckpt-every 100 --minutes $(left 35) --loss-weight depth_grad=0.05 --object-weight ${OW:-4} --out $R/$local_run \
    --resume >> $R/$local_run.log 2>&1
  echo "== gen"; last $R/$local_run.log
  pack ${RUN:-gen} $R/$local_run/stitched.* $R/$local_run.log $R/gen_set.log
}
case ${PHASE:-1} in
1)
  MAX_JOBS=16 build_gsplat > $R/gsplat.log 2>&1; echo "== gsplat"; last $R/gsplat.log
  train_obj
  # TEACHER_EVAL=1 (session 21): obj measured where it now limits, on the DiT's decoded frames of the 24 held-out
  # captions (t3d_ceiling.py --teacher --generated; 8 min on 2 CPU cores), before anything is distilled over it.
  # Carry .carry/eval_cache.safetensors.gz (`vist3a eval text-to-3d --model mini --world 24 --out /tmp/x
  # --write-text-cache .carry/eval_cache.safetensors`, gzip -9): the device has no MiniLM
  if [ "${TEACHER_EVAL:-0}" = 1 ] && [ -f .carry/eval_cache.safetensors.gz ]; then
    gunzip -kf .carry/eval_cache.safetensors.gz
    # bounded, so that obj's weights still come back if the measurement runs long
    timeout $(python3 -c "print(max(1, $B - 35 - ($(date +%s) - $t0)))") python3 benchmarks/t3d_ceiling.py --world 24 --teacher --generated --teacher-weights $OBJ --device ${DEV:-cuda} \
      --text-cache .carry/eval_cache.safetensors --out $R/teacher_eval --json $R/teacher_eval_obj.json \
      > $R/teacher_eval.log 2>&1
    echo "== teacher on the DiT's frames"; grep -a "^generated\|^frames" $R/teacher_eval.log | tail -3
    cp $R/teacher_eval/per_scene.csv $R/teacher_eval_obj_per_scene.csv 2>/dev/null
  fi
  pack p1 $OBJ $R/*.log $R/teacher_eval_obj.json $R/teacher_eval_obj_per_scene.csv  # obj's weights come back first: a later phase may find a fresh machine
  if [ "${SKIP_WS:-0}" != 1 ] && [ "$(left 30)" != 0.5 ]; then
    # WS_STEPS=auto (session 18, one call): as many steps as the time left allows (~1.3 step/s after ~20 s loading),
    # so that the learning-rate schedule ends where the call does
    [ "${WS_STEPS:-}" = auto ] && WS_STEPS=$(python3 -c "print(max(20, int(($B - 50 - ($(date +%s) - $t0)) * 1.3)))")
    ws $(left 30)
    [ -f $R/stitch_ws/stitched.json ] && pack ws $R/stitch_ws/stitched.* $R/stitch_ws.log
  fi
  # SEARCH=1 (session 18): the world set + layer search of PHASE 3 in the ~2 min left, so that PHASE=4 gets a whole
  # call (~8 min) for the 600-step distillation
  if [ "${SEARCH:-0}" = 1 ] && [ $(( $(date +%s) - t0 )) -lt $((B - 30)) ]; then
    stitch_search obj $OBJ; echo "== search"; last $R/search_obj.log
  fi
  # GEN=1 (session 21): the time left goes to PHASE 8's generated set instead (resumed there)
  [ "${GEN:-0}" = 1 ] && [ $(( $(date +%s) - t0 )) -lt $((B - 40)) ] && gen_set $((B - 25 - ($(date +%s) - t0)))
  ;;
2)
  warm_or_phase1
  [ -d $OBJ ] || { echo "no $OBJ: rerun PHASE=1"; exit 3; }
  ws $(left 40)
  [ -f $R/stitch_ws/stitched.json ] && candidate ws $R/stitch_ws
  ;;
3|4)
  warm_or_phase1
  STITCH_EXTRA="--loss-weight depth_grad=0.05 ${OW:+--object-weight $OW}"
  if [ "$PHASE" = 3 ]; then stitch obj $OBJ $(left 45); else stitch_train obj $OBJ $(left 45); fi
  echo "== stitch"; last $R/stitch_obj.log
  [ -f $R/stitch_obj/stitched.json ] && candidate scratch $R/stitch_obj
  ;;
5)  # session 17's object-weighted distillation: a candidate set carried IN PLACE of the shipped assets (the carry
  # limit leaves no room beside them: copy obj's anysplat-mini and a stitched-mini over $A, restore with git checkout),
  # its stitched decoder continued with the object pixels of the teacher's frames weighted OW times (--object-weight)
  python3 -m vist3a stitch train --video wan-mini --video-weights $A/wan-mini --recon anysplat-mini \
    --recon-weights $A/anysplat-mini --init-stitched $A/stitched-mini --world 20000 --world-seed 3 --frames 13 \
    --batch 4 --steps ${OW_STEPS:-200} --lr 1e-4 --warmup 20 --ckpt-every 50 --minutes $(left 25) \
    --loss-weight depth_grad=0.05 --object-weight ${OW:-4} --out $R/stitch_ow --resume >> $R/stitch_ow.log 2>&1
  echo "== ow"; last $R/stitch_ow.log
  pack ow $R/stitch_ow/stitched.* $R/stitch_ow.log
  ;;
6)  # session 20: session 19's object-weighted decoder (`scratch`, 480 steps) continued over its teacher `obj`, both
  # carried IN PLACE of the assets as in PHASE=5 ($A/anysplat-mini = obj, $A/stitched-mini = scratch; restore with git
  # checkout). One schedule of CONT_STEPS spans back-to-back calls on the warm machine (--resume); each call packs.
  python3 -c "import gsplat" 2>/dev/null && { MAX_JOBS=16 build_gsplat > $R/gsplat.log 2>&1; echo "== gsplat"; last $R/gsplat.log; }
  # CONT_STEPS=auto: one call's schedule, sized to the time left (~1.5 step/s after ~25 s of loading)
  [ "${CONT_STEPS:-}" = auto ] && CONT_STEPS=$(python3 -c "print(max(20, int(($B - 60 - ($(date +%s) - $t0)) * 1.5)))")
  python3 -m vist3a stitch train --video wan-mini --video-weights $A/wan-mini --recon anysplat-mini \
    --recon-weights $A/anysplat-mini --init-stitched $A/stitched-mini --world 20000 --world-seed 3 --frames 13 \
    --batch 4 --steps ${CONT_STEPS:-1100} --lr ${LR:-2e-4} --warmup 30 --ckpt-every 50 --minutes $(left 35) \
    --loss-weight depth_grad=0.05 --object-weight ${OW:-4} --out $R/stitch_cont --resume >> $R/stitch_cont.log 2>&1
  echo "== cont"; last $R/stitch_cont.log
  pack cont${CALL:-} $R/stitch_cont/stitched.* $R/stitch_cont.log
  ;;
7)  # session 20's second call, on the warm machine after PHASE=6: PHASE 6's decoder continued once more, new world
  # clips (world seed 7), lr 1e-4, its own schedule (540 steps fit the ~6 min the budget left)
  python3 -m vist3a stitch train --video wan-mini --video-weights $A/wan-mini --recon anysplat-mini \
    --recon-weights $A/anysplat-mini --init-stitched $R/stitch_cont --world 20000 --world-seed 7 --frames 13 \
    --batch 4 --steps ${CONT2_STEPS:-540} --lr 1e-4 --warmup 20 --ckpt-every 100 --minutes $(left 45) \
    --loss-weight depth_grad=0.05 --object-weight ${OW:-4} --out $R/stitch_cont2 --resume >> $R/stitch_cont2.log 2>&1
  echo "== cont2"; last $R/stitch_cont2.log
  pack cont2 $R/stitch_cont2/stitched.* $R/stitch_cont2.log
  ;;
8)  # (session 20; dry-run on the CPU with ALLOW_CPU=1 DEV=cpu GEN_N=4 GEN_STEPS=1; ran on the device in session 21)
  # distillation on generated latents: `stitch generate-set` writes the shipped DiT's raw
  # latents + their VAE decode for GEN_N world captions (seed 3; bounded to GEN_S seconds, resumable), then the
  # decoder is distilled on them (--dataset generated:DIR): the teacher sees the DiT's decoded frames, the student its
  # latents. Teacher: obj from PHASE=1 on this machine, else $A/anysplat-mini (a candidate carried in place). Start:
  # PHASE=1 SEARCH=1's layer search when present (a fresh LoRA), else $A/stitched-mini continued.
  MAX_JOBS=16 build_gsplat > $R/gsplat.log 2>&1  # ~50 s on a fresh machine, cached on a warm one
  gen_set ${GEN_S:-150}
  distil
  ;;
9)  # session 22 (few device seconds left after refused starts): obj and its distillation in one call. The generated
  # set (the shipped DiT's, independent of obj) is written while gsplat compiles; then obj; then PHASE 8's distillation
  # from the shipped stitched decoder in the time left. A PHASE=8 INIT=runs/mini/stitch_gen RUN=gen2 call on the warm
  # machine continues it (GEN_STEPS counted there).
  gen_set ${GEN_S:-120} > $R/gen_set_bg.txt 2>&1 & gen_pid=$!
  MAX_JOBS=16 build_gsplat > $R/gsplat.log 2>&1; echo "== gsplat"; last $R/gsplat.log
  wait $gen_pid; cat $R/gen_set_bg.txt
  train_obj
  pack p1 $OBJ $R/obj.log
  distil
  ;;
esac
echo "total $(( $(date +%s) - t0 )) s"
