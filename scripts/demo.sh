#!/usr/bin/env bash
# make demo: start the engine on the embedded default, show it ready and its
# effective config, then stop it with SIGTERM and check that it exits 0.
set -euo pipefail
BUILD=${PEERCACHE_BUILD:-build}
ENGINE=$BUILD/peercache
EAL=(-l 0-1 --no-huge --in-memory --file-prefix "pc_demo_$$")

log=$(mktemp)
pid=
cleanup() {
	[ -n "$pid" ] && kill -9 "$pid" 2>/dev/null || true
	rm -f "$log"
}
trap cleanup EXIT

echo "== PeerCache demo: one engine on the embedded default (its own discovery head on 127.0.0.1, TCP, no disk)"
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
echo "== Its effective configuration (every key; '# default' or where it was set)"
echo "\$ $ENGINE -- --print-config"
"$ENGINE" -- --print-config

echo
echo "== Stopping it with SIGTERM"
kill -TERM "$pid"
rc=0
wait "$pid" || rc=$?
pid=
grep -E 'received: stopping|\((control|worker)\)|stopped' "$log"
if [ "$rc" -ne 0 ]; then
	cat "$log"
	echo "demo: the engine exited with $rc" >&2
	exit 1
fi
echo "demo: the engine stopped cleanly (exit 0)"
