#!/usr/bin/env bash
# make bench-tree: the fast path of 'ckpt put' for a tree, on the embedded
# local cluster. FILES small files of 4 KiB in directories of 100, and one
# file of BIG bytes; then four puts, timed in this run:
#   1. first put (everything new)
#   2. unchanged tree (stat matches: nothing read)
#   3. unchanged tree with --force-read (everything read and hashed)
#   4. 10 MiB rewritten in the big file, and one small file appended to
# and the ratios of 2 and 4 against 3.
set -euo pipefail
cd "$(dirname "$0")/.."
FILES=${FILES:-10000}
BIG=${BIG:-512}   # MiB
dir=$(mktemp -d "${TMPDIR:-/tmp}/ckpt-bench-tree.XXXXXX")
export CKPT_HOME=$dir/home
unset CKPT_MANAGER CKPT_TOKEN CKPT_TOKEN_FILE
trap 'bin/ckpt cluster down >/dev/null 2>&1 || true; rm -rf "$dir"' EXIT
mkdir -p "$dir/w/big"
cd "$dir/w"
echo "making $FILES files of 4 KiB and one of $BIG MiB under $dir/w"
head -c $((FILES * 4096)) /dev/urandom | split -a 6 -b 4096 -d - part.
i=0
for f in part.*; do
  d=src/d$((i / 100)); [ -d "$d" ] || mkdir -p "$d"
  mv "$f" "$d/f$((i % 100))"; i=$((i + 1))
done
head -c $((BIG << 20)) /dev/urandom >big/state.bin
ckpt=$OLDPWD/bin/ckpt
$ckpt cluster up >/dev/null 2>&1
timed() { local t0 t1; t0=$(date +%s.%N); "$@" >/dev/null 2>"$dir/err" || { cat "$dir/err"; exit 1; }; t1=$(date +%s.%N); tail -1 "$dir/err" >&2; echo "$t1 - $t0" | bc; }
first=$(timed $ckpt put tree src big)
same=$(timed $ckpt put tree src big)
forced=$(timed $ckpt put --force-read tree src big)
dd if=/dev/urandom of=big/state.bin bs=1M count=10 seek=$((BIG / 5)) conv=notrunc status=none
echo x >>src/d1/f1
changed=$(timed $ckpt put tree src big)
printf '\n%-44s %8s %8s\n' "put of $FILES files + $BIG MiB" seconds "vs read"
printf '%-44s %8.2f %8.2f\n' "first (all new)" "$first" "$(echo "$first / $forced" | bc -l)"
printf '%-44s %8.2f %8.2f\n' "unchanged (stat matches, nothing read)" "$same" "$(echo "$same / $forced" | bc -l)"
printf '%-44s %8.2f %8.2f\n' "unchanged, --force-read (baseline)" "$forced" 1
printf '%-44s %8.2f %8.2f\n' "10 MiB rewritten + one file appended" "$changed" "$(echo "$changed / $forced" | bc -l)"
