#!/usr/bin/env bash
# make demo: start the engine on the embedded default, store 1,000 pages of
# 1 MiB through libpeercache, read them back, check every byte and the EXISTS
# prefix counts, print pages/s and GB/s, then stop the engine with SIGTERM and
# check that it exits 0.
set -euo pipefail
BUILD=${PEERCACHE_BUILD:-build}
ENGINE=$BUILD/peercache
CLIENT=$BUILD/peercache-demo-client
SOCKET=/tmp/peercache/engine.sock # the embedded default's engine_socket
# Hugepages when root can reserve them (the engine's 2 GiB segment + EAL heap,
# given back at exit); otherwise plain pages, where first-touch page faults
# dominate the SET timing on many VMs.
HUGE_NEED=1280
hp=/proc/sys/vm/nr_hugepages
hp_orig=
log=$(mktemp)
pid=
cleanup() {
	[ -n "$pid" ] && kill -9 "$pid" 2>/dev/null || true
	[ -n "$hp_orig" ] && echo "$hp_orig" >"$hp" 2>/dev/null || true
	rm -f "$log"
}
trap cleanup EXIT

EAL=(-l 0-1 --no-huge --in-memory --file-prefix "pc_demo_$$")
if [ -w "$hp" ]; then
	hp_orig=$(cat "$hp")
	free=$(awk '/^HugePages_Free:/ { print $2 }' /proc/meminfo)
	if [ "${free:-0}" -lt "$HUGE_NEED" ]; then
		echo $((hp_orig + HUGE_NEED - free)) >"$hp" 2>/dev/null || true
	fi
	free=$(awk '/^HugePages_Free:/ { print $2 }' /proc/meminfo)
	if [ "${free:-0}" -ge "$HUGE_NEED" ]; then
		EAL=(-l 0-1 --in-memory --file-prefix "pc_demo_$$")
	fi
fi

echo "== PeerCache demo: one engine on the embedded default (its own discovery head on 127.0.0.1, TCP, no disk)"
case " ${EAL[*]} " in
*" --no-huge "*) echo "   (plain pages: no hugepages could be reserved; first-touch page faults slow the first SETs)" ;;
*) echo "   (hugepages: the segment is hugepage-backed)" ;;
esac
echo "\$ $ENGINE ${EAL[*]}"
"$ENGINE" "${EAL[@]}" >"$log" 2>&1 &
pid=$!

for _ in $(seq 1 600); do
	grep -q 'peercache.engine: ready:' "$log" && break
	if ! kill -0 "$pid" 2>/dev/null; then
		cat "$log"
		echo "demo: the engine exited before it was ready" >&2
		exit 1
	fi
	sleep 0.1
done
if ! grep -q 'peercache.engine: ready:' "$log"; then
	cat "$log"
	echo "demo: the engine did not report ready within 60 s" >&2
	exit 1
fi
grep '^peercache\.' "$log"

echo
echo "== A client stores 1,000 pages of 1 MiB, reads them back and checks every byte"
echo "\$ $CLIENT --socket $SOCKET --pages 1000 --page-size 1048576"
if ! "$CLIENT" --socket "$SOCKET" --pages 1000 --page-size 1048576; then
	cat "$log"
	echo "demo: the client failed" >&2
	exit 1
fi

echo
echo "== Stopping it with SIGTERM"
kill -TERM "$pid"
rc=0
wait "$pid" || rc=$?
pid=
grep -E 'session [0-9]+ (opened|closed)|received: stopping|\((control|worker)\)|stopped' "$log"
if [ "$rc" -ne 0 ]; then
	cat "$log"
	echo "demo: the engine exited with $rc" >&2
	exit 1
fi
echo "demo: the engine stopped cleanly (exit 0)"
