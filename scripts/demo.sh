#!/usr/bin/env bash
# make demo: the main job on the embedded local cluster.
#  1. heat on 4 ranks, no failure, checkpointing every 50 steps;
#  2. the same run in a fresh cluster with rank 2 killed at step 130:
#     ckptrun relaunches it and it resumes from the step-100 version;
#  3. both final checksums (equal), each rank's step log (--out, protected
#     with the checkpoints: byte-identical although rank 2 died after
#     writing steps 101-129), the versions table, and a restore of the
#     step-100 version checked against the checksum heat printed.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${DEMO_N:-1024}
STEPS=${DEMO_STEPS:-200}
EVERY=${DEMO_EVERY:-50}
out=.ckpt/demo
rm -rf "$out"
mkdir -p "$out"
trap 'CKPT_HOME=$out/run1 bin/ckpt cluster down >/dev/null 2>&1 || true; CKPT_HOME=$out/run2 bin/ckpt cluster down >/dev/null 2>&1 || true' EXIT
unset CKPT_MANAGER CKPT_TOKEN CKPT_TOKEN_FILE

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "1. heat on 4 ranks, ${N}x${N} grid, $STEPS steps, checkpoint every $EVERY (cluster under $out/run1)"
CKPT_HOME=$out/run1 bin/ckptrun -np 4 bin/heat --n "$N" --steps "$STEPS" --checkpoint-every "$EVERY" \
  --out "$out/logs1" | tee "$out/run1.log"

say "2. the same job in a fresh cluster; rank 2 fails at step 130 and ckptrun restarts it"
CKPT_HOME=$out/run2 bin/ckptrun -np 4 bin/heat --n "$N" --steps "$STEPS" --checkpoint-every "$EVERY" \
  --out "$out/logs2" --fail-at-step 130 --fail-rank 2 | tee "$out/run2.log"

say "3. results"
a=$(sed -n 's/^final checksum: //p' "$out/run1.log")
b=$(sed -n 's/^final checksum: //p' "$out/run2.log" | tail -1)
echo "without failure: final checksum: $a"
echo "with a restart:  final checksum: $b"
if [ -z "$a" ] || [ "$a" != "$b" ]; then
  echo "demo: the checksums differ" >&2
  exit 1
fi
echo "equal: the restarted run resumed exactly"
for r in 0 1 2 3; do
  cmp "$out/logs1/heat-rank-$r.log" "$out/logs2/heat-rank-$r.log" ||
    { echo "demo: rank $r's step log differs after the restart" >&2; exit 1; }
done
echo "step logs: $(wc -l <"$out/logs2/heat-rank-2.log") lines on rank 2, identical on every rank to the run without failure"
echo "(the restart rolled them back to step 100, dropping what the failed attempt wrote after it)"

say "versions of heat in the restarted run's cluster"
CKPT_HOME=$out/run2 bin/ckpt versions heat

say "restore the step-100 version to files, one per rank and region, and check them"
v=$(awk '$1=="checkpoint" && $3=="100" {print $5}' "$out/run2.log" | head -1)
want=$(awk '$1=="checkpoint" && $3=="100" {print $7}' "$out/run2.log" | head -1)
CKPT_HOME=$out/run2 bin/ckpt restore heat --version "$v" --to "$out/restored"
ls "$out/restored"
got=$(cat "$out"/restored/rank-0000{0,1,2,3}/temperature | sha256sum | cut -d' ' -f1)
echo "step 100 as printed by heat: $want"
echo "step 100 from ckpt restore:  $got"
[ "$got" = "$want" ] || { echo "demo: restored bytes differ" >&2; exit 1; }
CKPT_HOME=$out/run2 bin/ckpt verify heat
echo
echo "demo: done. The clusters are stopped on exit; their data stays under $out."
