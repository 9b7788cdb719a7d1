#!/usr/bin/env bash
# Emulated-link benchmark behind `make bench-net` (stdchk's setting): the
# writer, the manager and up to 8 stores each in a network namespace of
# their own, all plugged into one bridge (in a namespace of its own too),
# every link shaped to 1 Gbit/s with tc tbf at both ends. Nothing is
# addressed outside these namespaces (10.99.0.0/24 lives only inside them).
#
# For 1, 2, 4 and 8 stores it starts a fresh ckpt-manager and the stores,
# then runs `netbench put` in the writer's namespace over windows 1, 4, 16,
# 64 and replicas 1 and 2; before that it measures the disk and raw TCP
# through the links. `netbench report` writes bench/net/results.md,
# results.json and bandwidth.png.
#
# Environment: QUICK=1 (128 MiB per run instead of 512 MiB), SIZE,
# STORE_COUNTS ("1 2 4 8"), WINDOWS (1,4,16,64), REPLICAS (1,2), REPEAT (3),
# BURST (tbf bucket, 512kb), OUT (bench/net: where the results go),
# WORKDIR (/var/tmp: the stores' blocks and the logs go in a fresh
# directory under it; it must be on the disk being measured),
# KEEP=1 (keep that directory).
#
# Needs root, ip and tc (iproute2). Where network namespaces or tbf are not
# permitted it says why and exits 0 without measuring anything.
set -euo pipefail
cd "$(dirname "$0")/../.."

BIN=${BIN:-bin}
OUT=${OUT:-bench/net}
if [ "${QUICK:-0}" = 1 ]; then MODE=quick; SIZE=${SIZE:-128MiB}; else MODE=full; SIZE=${SIZE:-512MiB}; fi
STORE_COUNTS=${STORE_COUNTS:-1 2 4 8}
WINDOWS=${WINDOWS:-1,4,16,64}
REPLICAS=${REPLICAS:-1,2}
REPEAT=${REPEAT:-3}   # runs of each configuration; the report shows medians
RATE=1gbit     # the report's line rate (125 MB/s) assumes this
BURST=${BURST:-512kb}
TBF="tbf rate $RATE burst $BURST latency 5ms"
NET=10.99.0    # only ever configured inside the namespaces below
P=ckbn$$       # namespace prefix, unique to this run
LIFE=20m       # no daemon outlives this, whatever happens

say() { echo "bench-net: $*"; }
skip() { say "SKIPPED, nothing measured: $*"; FAILED=0; exit 0; }

[ "$(id -u)" = 0 ] || skip "creating network namespaces needs root"
if ! command -v ip >/dev/null || ! command -v tc >/dev/null; then
	if command -v apt-get >/dev/null; then
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iproute2 >/dev/null 2>&1 || true
	fi
	command -v ip >/dev/null && command -v tc >/dev/null || skip "ip and tc (iproute2) are missing and could not be installed"
fi
for b in ckpt-store ckpt-manager netbench; do
	[ -x "$BIN/$b" ] || { say "$BIN/$b missing: run 'make bench-net'"; exit 1; }
done

mkdir -p "$OUT"
WORK=$(mktemp -d "${WORKDIR:-/var/tmp}/ckpt-bench-net.XXXXXX")
mkdir -p "$WORK/log"
PIDS=()
FAILED=1
cleanup() {
	set +e
	for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null; done
	for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null; done
	# Anything still running in our namespaces is ours: end it by its id.
	for ns in $(ip netns list | awk '{print $1}' | grep "^$P-"); do
		for pid in $(ip netns pids "$ns"); do kill "$pid" 2>/dev/null; done
	done
	sleep 0.2
	for ns in $(ip netns list | awk '{print $1}' | grep "^$P-"); do ip netns del "$ns"; done
	if [ "$FAILED" = 1 ]; then
		for f in "$WORK"/log/*.log; do [ -s "$f" ] && { echo "--- $f (last lines)"; tail -n 5 "$f"; }; done
	fi
	if [ "${KEEP:-0}" = 1 ]; then say "work directory kept: $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Probe: a namespace, a veth pair and tbf must all be permitted here.
if ! err=$(ip netns add "$P-probe" 2>&1); then
	skip "this sandbox does not permit creating network namespaces ('ip netns add' said: $err)"
fi
probe=ok
ip -n "$P-probe" link add va type veth peer name vb >/dev/null 2>&1 || probe="veth pairs are not permitted"
if [ "$probe" = ok ]; then
	ip netns exec "$P-probe" tc qdisc add dev va root $TBF >/dev/null 2>&1 || probe="tc tbf is not available in this kernel"
fi
netem="netem is not available in this kernel, so no delay is added"
ip netns exec "$P-probe" tc qdisc add dev vb root netem delay 0.1ms >/dev/null 2>&1 && netem="no delay is added"
ip netns del "$P-probe"
[ "$probe" = ok ] || skip "$probe"

if ! command -v gnuplot >/dev/null && command -v apt-get >/dev/null; then
	say "installing gnuplot-nox for the plot"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gnuplot-nox >/dev/null 2>&1 || say "could not install gnuplot-nox: the plot will be an SVG"
fi

# nsx NS CMD...: run CMD in namespace $P-NS.
nsx() { local ns=$1; shift; ip netns exec "$P-$ns" "$@"; }

# start NAME NS CMD...: run a daemon in a namespace, bounded by $LIFE, and
# wait (up to 15 s) for it to print its "listening on" line.
start() {
	local name=$1 ns=$2; shift 2
	ip netns exec "$P-$ns" timeout "$LIFE" "$@" >"$WORK/log/$name.log" 2>&1 &
	PIDS+=($!)
	for _ in $(seq 150); do
		grep -q "^listening on" "$WORK/log/$name.log" && return 0
		kill -0 "${PIDS[-1]}" 2>/dev/null || break
		sleep 0.1
	done
	say "$name did not start"; tail -n 20 "$WORK/log/$name.log"; exit 1
}

# stop: end every daemon started so far, and wait for each.
stop() {
	for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
	for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
	PIDS=()
}

# The network: a bridge in namespace sw; every other namespace has eth0,
# the peer of a bridge port; both ends of every link are shaped.
max=0
for n in $STORE_COUNTS; do if [ "$n" -gt "$max" ]; then max=$n; fi; done
ip netns add "$P-sw"
ip -n "$P-sw" link set lo up
ip -n "$P-sw" link add br0 type bridge
ip -n "$P-sw" link set br0 up
attach() {
	local ns=$1 addr=$2
	ip netns add "$P-$ns"
	ip -n "$P-$ns" link set lo up
	ip -n "$P-sw" link add "p-$ns" type veth peer name eth0 netns "$P-$ns"
	ip -n "$P-sw" link set "p-$ns" master br0 up
	ip -n "$P-$ns" addr add "$addr/24" dev eth0
	ip -n "$P-$ns" link set eth0 up
	nsx sw tc qdisc add dev "p-$ns" root $TBF
	nsx "$ns" tc qdisc add dev eth0 root $TBF
}
attach cl "$NET.1"   # the writer
attach mg "$NET.2"   # the manager
for i in $(seq "$max"); do attach "s$i" "$NET.$((10 + i))"; done
say "$((max + 2)) namespaces ($P-*) on one bridge, every link: $TBF"

head -c 32 /dev/urandom | od -An -tx1 -v | tr -d ' \n' >"$WORK/token"
chmod 600 "$WORK/token"

# Limits: the disk the stores share, and raw TCP from the writer through
# the shaped links, to one store and to several at once.
"$BIN/netbench" disk --dir "$WORK" --size "$SIZE" --out "$WORK/disk.json"
for i in $(seq "$max"); do
	start "sink-s$i" "s$i" "$BIN/netbench" sink --listen "$NET.$((10 + i)):7272" --for 2m
done
to=""
for i in $(seq "$max"); do
	to="${to:+$to,}$NET.$((10 + i)):7272"
	case $i in 1 | 4 | "$max")
		nsx cl timeout 90 "$BIN/netbench" tcp --to "$to" --size 256MiB --label "$i store(s)" --out "$WORK/links.jsonl" ;;
	esac
done
stop

# The runs: a fresh manager and fresh stores for each of them.
MGR="$NET.2:7070"
# put TAG N ARGS...: netbench put against a fresh manager and N stores.
put() {
	local tag=$1 n=$2
	shift 2
	rm -rf "$WORK/mgr" "$WORK"/s[0-9]*
	start "manager-$tag" mg "$BIN/ckpt-manager" --listen "$MGR" --data "$WORK/mgr" --token-file "$WORK/token" \
		--gc-every 0 --repair-every 0 --log-level warn
	for i in $(seq "$n"); do
		a="$NET.$((10 + i)):7171"
		start "store-$tag-s$i" "s$i" "$BIN/ckpt-store" --listen "$a" --advertise "$a" --manager "$MGR" \
			--dir "$WORK/s$i" --quota 16GiB --token-file "$WORK/token" --heartbeat 1s --log-level warn
	done
	nsx cl timeout 15m "$BIN/netbench" put --manager "$MGR" --token-file "$WORK/token" --stores "$n" \
		--repeat "$REPEAT" --size "$SIZE" "$@"
	stop
	rm -rf "$WORK/mgr" "$WORK"/s[0-9]*
}
for n in $STORE_COUNTS; do
	put "$n" "$n" --windows "$WINDOWS" --replicas "$REPLICAS" --out "$WORK/runs.jsonl"
done

# Small blocks: 4 stores (or the most there are), one copy, at
# SMALL_WINDOW, the writer's default window for SMALL_BLOCK
# (client.WindowFor: 64 for 64 KiB): whether blocks as small as
# incremental checkpoints use reach the line rate too.
SMALL_BLOCK=${SMALL_BLOCK:-64KiB}
SMALL_WINDOW=${SMALL_WINDOW:-64}
if [ "$SMALL_BLOCK" != none ]; then
	put small $((max < 4 ? max : 4)) --block "$SMALL_BLOCK" --windows "$SMALL_WINDOW" --replicas 1 --out "$WORK/runs-small.jsonl"
fi

"$BIN/netbench" report --work "$WORK" --out "$OUT" --mode "$MODE" --line-mbps 125 \
	--shaping "every link shaped to 1 Gbit/s by tc tbf (burst $BURST, latency 5ms) at both ends; $netem (the RTT is the veths' own)"
FAILED=0
say "wrote $OUT/results.md, $OUT/results.json and the plot"
