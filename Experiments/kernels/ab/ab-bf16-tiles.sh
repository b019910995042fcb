#!/usr/bin/env bash
# A/B of the bf16 packed-tile matmul between two revisions of matmul_bf16.c, in one process
# (ab-bf16-tiles.c), on SmolLM2's shapes at 1, 8, 16 and 32 rows. Needs gcc and an AMX CPU.
#
#   bash Experiments/kernels/ab/ab-bf16-tiles.sh [REV_A] [REV_B|worktree] [THREADS...]
#   bash Experiments/kernels/ab/ab-bf16-tiles.sh 694d6eb~1 694d6eb 1 2    # the AMX prefetch
set -euo pipefail
repo="$(cd "$(dirname "$0")/../../.." && pwd)"
a=${1:-HEAD~1}; b=${2:-worktree}; shift $(( $# < 2 ? $# : 2 )) || true
threads=("${@:-1 2}")
work="$(mktemp -d)"; trap 'rm -rf "$work"' EXIT
k="$repo/Sources/CRollspecKernels"
git -C "$repo" show "$a:Sources/CRollspecKernels/matmul_bf16.c" > "$work/a.c"
if [ "$b" = worktree ]; then cp "$k/matmul_bf16.c" "$work/b.c"; else git -C "$repo" show "$b:Sources/CRollspecKernels/matmul_bf16.c" > "$work/b.c"; fi
rename="-Drs_float_to_bf16=vB_f2b -Drs_round_to_bf16=vB_r2b -Drs_transpose=vB_tr -Drs_transpose_to_bf16=vB_trb
  -Drs_matmul_skinny_bf16=vB_skinny -Drs_bf16_tiles_count=vB_tc -Drs_bf16_pack_tiles=vB_pack -Drs_matmul_skinny_bf16_tiles=vB_tiles"
flags="-O3 -fno-math-errno -I$k/include -I$k"
gcc $flags $rename -c "$work/b.c" -o "$work/b.o"
gcc $flags "$(dirname "$0")/ab-bf16-tiles.c" "$work/b.o" "$work/a.c" "$k/matmul.c" "$k/elementwise.c" "$k/pool.c" \
    "$k/kernels.c" "$k/cpu.c" -lpthread -lm -o "$work/ab"
echo "A = $a, B = $b"
for t in ${threads[@]}; do "$work/ab" "$t"; done
