#!/usr/bin/env bash
# A packed mini candidate (scripts/pack_mini_candidate.py) measured on the CPU against the shipped set, the way
# docs/mini.md compares them since session 15: the true-latent ceiling on 24 held-out captions
# (benchmarks/t3d_ceiling.py, ~8 min on 2 cores), then `vist3a eval text-to-3d --world 24` at the default and the 777
# generation seeds (~10 min each, one after the other: two at once only share the 2 cores), each paired scene by scene
# with session 15's shipped rows (benchmarks/t3d_paired.py).
#   bash scripts/eval_mini_candidate.sh CAND_DIR NAME OUT_DIR [STEPS]
#   STEPS: any of teacher,ceiling,seed0,seed777 (default the last three; teacher: the candidate's anysplat-mini on the
#   true frames, its teacher ceiling); a step whose JSON is already in OUT_DIR is not redone
set -euo pipefail
[ $# -ge 3 ] || { echo "usage: $0 CAND_DIR NAME OUT_DIR [STEPS]" >&2; exit 2; }
cand=$(realpath -m "$1") name=$2 out=$(realpath -m "$3") steps=${4:-ceiling,seed0,seed777}
[ -f "$cand/stitched-mini/stitched.json" ] || { echo "$cand: not a packed candidate (no stitched-mini/stitched.json)" >&2; exit 2; }
cd "$(dirname "$0")/.."
# each evaluation in a fresh folder: eval text-to-3d reuses the scenes and renders it finds in its --out
work=$(mktemp -d /tmp/eval_mini_candidate.XXXXXX)
trap 'echo "renders and contact sheets: $work"' EXIT
mkdir -p "$out"
base=benchmarks/results/mini_s15_2026-12-06
s17=benchmarks/results/mini_s17_2026-12-06
export VIST3A_MINI_ASSETS=$cand
pair() { python3 benchmarks/t3d_paired.py --pair "$1" "$2" --json "$out/$3"; }  # pair BASE_CSV CAND_CSV JSON_NAME
if [[ $steps == *teacher* ]] && [ ! -f "$out/t3d_ceiling_world24_teacher_${name}_cpu.json" ]; then
  python3 benchmarks/t3d_ceiling.py --world 24 --teacher --teacher-weights "$cand/anysplat-mini" --out "$work/teacher" \
    --json "$out/t3d_ceiling_world24_teacher_${name}_cpu.json" --device cpu
  csv=$out/t3d_ceiling_world24_teacher_${name}_per_scene.csv; cp "$work/teacher/per_scene.csv" "$csv"
  pair "$s17/t3d_ceiling_world24_teacher_obj_s17_per_scene.csv" "$csv" "paired_teacher_${name}_vs_teacher_obj_s17.json"
fi
if [[ $steps == *ceiling* ]] && [ ! -f "$out/t3d_ceiling_world24_true_latent_${name}_cpu.json" ]; then
  python3 benchmarks/t3d_ceiling.py --world 24 --out "$work/ceiling" --json "$out/t3d_ceiling_world24_true_latent_${name}_cpu.json" --device cpu
  csv=$out/t3d_ceiling_world24_true_latent_${name}_per_scene.csv; cp "$work/ceiling/per_scene.csv" "$csv"
  pair "$s17/t3d_ceiling_world24_teacher_obj_s17_per_scene.csv" "$csv" "paired_true_latent_${name}_vs_teacher_obj_s17.json"
  pair "$s17/t3d_ceiling_world24_true_latent_scratch_per_scene.csv" "$csv" "paired_true_latent_${name}_vs_scratch.json"
  pair "$base/t3d_ceiling_world24_true_latent_per_scene.csv" "$csv" "paired_true_latent_${name}_vs_shipped.json"
fi
for seed in 0 777; do
  [[ $steps == *seed$seed* ]] || continue
  sfx=$([ $seed = 0 ] && echo "" || echo "_777")
  [ -f "$out/t3d_world24_${name}${sfx}.json" ] && continue
  gs=$([ $seed = 0 ] && echo "" || echo "--gen-seed 777")
  vist3a eval text-to-3d --model mini --world 24 $gs --device cpu --no-progress --out "$work/t3d${sfx}"
  csv=$out/t3d_world24_${name}${sfx}_per_scene.csv; cp "$work/t3d${sfx}/per_scene.csv" "$csv"
  cp "$work/t3d${sfx}/overall.json" "$out/t3d_world24_${name}${sfx}.json"
  pair "$base/t3d_world24_aligned894${sfx}_per_scene.csv" "$csv" "paired_${name}${sfx}_vs_shipped.json"
done
