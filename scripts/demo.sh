#!/usr/bin/env bash
# make demo: two engines on loopback, a remote GET between them.
#
#   engine A  the embedded default (its own discovery head on 127.0.0.1:31998,
#             TCP, no disk, a 2 GiB segment); a client publishes 1,000 pages
#             of 1 MiB through libpeercache on it
#   engine B  the same defaults, on 127.0.0.2, joining A's discovery head, a
#             512 MiB segment (it only stages the pages it reads); a client
#             reads the 1,000 pages through it: each GET misses locally, B asks
#             the directory, READs the page from A's data port over TCP and
#             checks it; the client checks every byte
#
# It prints pages/s and GB/s for the SET on A, a local GET on A (for context)
# and the remote GET through B, checks the EXISTS prefix counts through B, then
# stops both engines with SIGTERM and checks that each exits 0. Any failed
# byte check, miss or engine error makes it exit non-zero.
#
# The client is Python over build/libpeercache.so (tests/integration/pcclient.py,
# ctypes); the times are those spent inside the library calls only.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${PEERCACHE_BUILD:-build}
PYTHON=${PYTHON:-python3}
ENGINE=$BUILD/peercache
CTL=$BUILD/peercache-ctl
PAGES=${DEMO_PAGES:-1000}
PAGE_SIZE=$((1 << 20))
SOCKET_A=/tmp/peercache/engine.sock # the embedded default's engine_socket
HOST_B=127.0.0.2
export PEERCACHE_BUILD=$BUILD

# Hugepages when root can reserve them (each engine's segment + EAL heap, given
# back at exit); otherwise plain pages, where first-touch page faults dominate
# the SET timing on many VMs.
HUGE_A=1280 # 2 GiB segment + heap, in 2 MiB pages
HUGE_B=512  # 512 MiB segment + heap
hp=/proc/sys/vm/nr_hugepages
hp_orig=
work=$(mktemp -d)
SOCKET_B=$work/reader.sock
log_a=$work/a.log
log_b=$work/b.log
pid_a=
pid_b=
cleanup() {
	for p in $pid_a $pid_b; do
		kill -9 "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	if [ -n "$hp_orig" ]; then
		echo "$hp_orig" >"$hp" 2>/dev/null || true
	fi
	rm -rf "$work"
}
trap cleanup EXIT

huge_free() { awk '/^HugePages_Free:/ { print $2 }' /proc/meminfo; }

EAL_A=(-l 0-1 --no-huge --in-memory --file-prefix "pc_demo_a_$$")
EAL_B=(-l 0-1 --no-huge --in-memory --file-prefix "pc_demo_b_$$")
if [ -w "$hp" ]; then
	hp_orig=$(cat "$hp")
	need=$((HUGE_A + HUGE_B))
	free=$(huge_free)
	if [ "${free:-0}" -lt "$need" ]; then
		echo $((hp_orig + need - free)) >"$hp" 2>/dev/null || true
	fi
	free=$(huge_free)
	if [ "${free:-0}" -ge "$HUGE_A" ]; then
		EAL_A=(-l 0-1 --in-memory --file-prefix "pc_demo_a_$$")
		free=$((free - HUGE_A))
	fi
	if [ "${free:-0}" -ge "$HUGE_B" ]; then
		EAL_B=(-l 0-1 --in-memory --file-prefix "pc_demo_b_$$")
	fi
fi
APP_B=(--set "discovery_addr=127.0.0.1:31998" --set "local_hostname=$HOST_B"
	--set "meta_bind_host=$HOST_B" --set "control_bind_host=$HOST_B"
	--set "rdma_bind_host=$HOST_B" --set "metrics_bind_host=$HOST_B"
	--set "node_id=demo-reader" --set "global_segment_size=512mb"
	--set "engine_socket=$SOCKET_B")

memory() {
	case " $* " in
	*" --no-huge "*) echo "plain pages: no hugepages could be reserved; first-touch page faults slow the first writes" ;;
	*) echo "hugepages: the segment is hugepage-backed" ;;
	esac
}

# wait_ready PID LOG NAME: until the engine logs ready (60 s), or fail.
wait_ready() {
	for _ in $(seq 1 600); do
		grep -q 'peercache.engine: ready:' "$2" && return 0
		if ! kill -0 "$1" 2>/dev/null; then
			cat "$2"
			echo "demo: engine $3 exited before it was ready" >&2
			exit 1
		fi
		sleep 0.1
	done
	cat "$2"
	echo "demo: engine $3 did not report ready within 60 s" >&2
	exit 1
}

fail() {
	for f in "$log_a" "$log_b"; do
		[ -s "$f" ] && { echo "----- $f"; tail -n 60 "$f"; }
	done
	echo "demo: $*" >&2
	exit 1
}

# The embedded default's socket directory: left behind by an engine run as another user
# (root, say), it would keep A from starting.
sockdir=$(dirname "$SOCKET_A")
if [ -e "$sockdir" ] && [ ! -w "$sockdir" ]; then
	echo "demo: $sockdir (engine A's socket directory) is not writable by $(id -un);" \
		"remove it or run the demo as its owner" >&2
	exit 1
fi

echo "== PeerCache demo: two engines on loopback, pages published on A and read through B"
echo "== Engine A: the embedded default (its own discovery head on 127.0.0.1:31998, TCP, no disk)"
echo "   ($(memory "${EAL_A[@]}"))"
echo "\$ $ENGINE ${EAL_A[*]}"
"$ENGINE" "${EAL_A[@]}" >"$log_a" 2>&1 &
pid_a=$!
wait_ready "$pid_a" "$log_a" A
grep '^peercache\.' "$log_a"

echo
echo "== Engine B: the same defaults on $HOST_B, joining A's discovery head"
echo "   ($(memory "${EAL_B[@]}"))"
echo "\$ $ENGINE ${EAL_B[*]} -- ${APP_B[*]}"
"$ENGINE" "${EAL_B[@]}" -- "${APP_B[@]}" >"$log_b" 2>&1 &
pid_b=$!
wait_ready "$pid_b" "$log_b" B
grep '^peercache\.' "$log_b"

# Both engines list both members (heartbeats: up to a few seconds).
for _ in $(seq 1 300); do
	n=$("$CTL" --socket "$SOCKET_B" --json members 2>/dev/null |
		"$PYTHON" -c 'import json,sys; print(len(json.load(sys.stdin)["members"]))' 2>/dev/null ||
		echo 0)
	[ "$n" = 2 ] && break
	sleep 0.1
done
[ "$n" = 2 ] || fail "engine B never saw both members"
echo
echo "\$ $CTL --socket $SOCKET_B members"
"$CTL" --socket "$SOCKET_B" members || fail "peercache-ctl members failed"

echo
echo "== A client publishes $PAGES pages of 1 MiB on A; another reads them through B and checks every byte"
if ! "$PYTHON" - "$SOCKET_A" "$SOCKET_B" "$PAGES" "$PAGE_SIZE" "$CTL" <<'PY'; then
import ctypes
import json
import os
import random
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.getcwd(), "tests", "integration"))
import pcclient  # noqa: E402

sock_a, sock_b, pages, size, ctl = (sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]),
                                    sys.argv[5])
NS = "demo"
BATCH = 32
lib = pcclient.lib()
lib.pc_client_version.restype = ctypes.c_char_p

# Page i: a window of a random 2 MiB block starting at (i * 4160) mod 1 MiB, its
# first 8 bytes replaced by i: distinct for every page, cheap to make and check.
base = random.Random(20240601).randbytes(2 * size)


def page_off(i):
    return (i * 4160) % size


def key(i):
    return b"demo-remote-%d-%d" % (size, i)


buf = ctypes.create_string_buffer(BATCH * size)
addr = ctypes.addressof(buf)
iov = (pcclient.Iov * BATCH)()
niov = (ctypes.c_uint * BATCH)()
for j in range(BATCH):
    iov[j].base, iov[j].len, niov[j] = addr + j * size, size, 1
res = (ctypes.c_int * BATCH)()


def connect(path):
    err = ctypes.c_int(0)
    h = lib.pc_client_connect(path.encode(), NS.encode(), 30000, ctypes.byref(err))
    if not h:
        sys.exit("demo-client: cannot connect to %s: %s" % (path, os.strerror(-err.value)))
    return h


def keys_of(first, n):
    ks = (ctypes.c_char_p * n)()
    for j in range(n):
        ks[j] = key(first + j)
    return ks


def fill(first, n):
    view = memoryview(buf).cast("B")
    for j in range(n):
        o, p = page_off(first + j), j * size
        view[p:p + size] = base[o:o + size]
        view[p:p + 8] = struct.pack("<Q", first + j)


def check(first, n, what):
    bad = 0
    for j in range(n):
        o = page_off(first + j)
        got = ctypes.string_at(addr + j * size, size)
        want = struct.pack("<Q", first + j) + base[o + 8:o + size]
        if got != want:
            at = next((x for x in range(size) if got[x] != want[x]), -1)
            print("%s: page %d (%s): byte %d differs" % (what, first + j, key(first + j).decode(),
                                                         at), file=sys.stderr)
            bad += 1
    return bad


def rate(what, n, secs):
    secs = max(secs, 1e-9)
    print("%-22s %d pages in %.3f s: %.0f pages/s, %.2f GB/s" % (
        what, n, secs, n / secs, n * size / secs / 1e9))


a, b = connect(sock_a), connect(sock_b)
print("demo-client: libpeercache %s, namespace \"%s\", %d pages of %d bytes, batches of %d" % (
    lib.pc_client_version().decode(), NS, pages, size, BATCH))
status = 0

# SET on A (prefix_depth: the index of the batch's first page, as SGLang's chains).
t_set, stored, dedup = 0.0, 0, 0
for first in range(0, pages, BATCH):
    n = min(BATCH, pages - first)
    fill(first, n)
    ks = keys_of(first, n)
    t0 = time.perf_counter()
    rc = lib.pc_client_batch_set(a, n, ks, iov, niov, first, res)
    t_set += time.perf_counter() - t0
    if rc < 0:
        sys.exit("SET pages %d..%d failed: %s" % (first, first + n - 1, os.strerror(-rc)))
    for j in range(n):
        if res[j] == 0:
            stored += 1
        elif res[j] == pcclient.DEDUP:
            dedup += 1
        else:
            print("SET %s: %s" % (key(first + j).decode(), os.strerror(-res[j])), file=sys.stderr)
            status = 1
rate("SET on A (local)", pages, t_set)
print("     %d stored, %d already stored" % (stored, dedup))


def get_all(h, what):
    global status
    t, hits, bad = 0.0, 0, 0
    for first in range(0, pages, BATCH):
        n = min(BATCH, pages - first)
        ctypes.memset(addr, 0xA5, n * size)
        ks = keys_of(first, n)
        t0 = time.perf_counter()
        rc = lib.pc_client_batch_get(h, n, ks, iov, niov, res)
        t += time.perf_counter() - t0
        if rc < 0:
            print("%s: GET pages %d..%d failed: %s" % (what, first, first + n - 1,
                                                     os.strerror(-rc)), file=sys.stderr)
            status = 1
            return
        for j in range(n):
            if res[j] != 0:
                print("%s: GET %s: %s" % (what, key(first + j).decode(), os.strerror(-res[j])),
                      file=sys.stderr)
                status = 1
                bad += 1
        hits += sum(1 for j in range(n) if res[j] == 0)
        bad += check(first, n, what)
    if bad:
        status = 1
    rate(what, pages, t)
    print("     %d hits, %d pages missing or different" % (hits, bad))


get_all(a, "GET on A (local)")

# The directory is filled asynchronously after a SET commits: wait until B sees every page.
deadline = time.monotonic() + 60
while True:
    seen = 0
    for first in range(0, pages, 128):
        n = min(128, pages - first)
        rc = lib.pc_client_batch_exists(b, n, keys_of(first, n), None)
        seen += max(rc, 0)
        if rc != n:
            break
    if seen == pages:
        break
    if time.monotonic() > deadline:
        sys.exit("EXISTS through B counts %d of %d pages after 60 s" % (seen, pages))
    time.sleep(0.05)

get_all(b, "GET through B (remote)")

# EXISTS through B counts the leading keys present anywhere.
ks = keys_of(0, 21)
rc = lib.pc_client_batch_exists(b, 21, ks, None)
print("EXISTS through B, first 21 keys: %d%s" % (rc, "" if rc == 21 else " (WRONG)"))
status |= rc != 21
ks[10] = b"demo-missing"
rc = lib.pc_client_batch_exists(b, 21, ks, None)
print("EXISTS through B, keys 0..9, a missing key, 11..20: %d%s" % (rc, "" if rc == 10
                                                                    else " (WRONG)"))
status |= rc != 10

# What each engine counted (peercache-ctl stats): its store, its remote GETs, its data plane.
for name, sock in (("A", sock_a), ("B", sock_b)):
    r = subprocess.run([ctl, "--socket", sock, "--json", "stats"], capture_output=True, text=True)
    if r.returncode != 0:
        print("engine %s: peercache-ctl stats failed: %s" % (name, r.stderr.strip()))
        status = 1
        continue
    st = json.loads(r.stdout)
    s, rem, x = st["store"], st.get("remote") or {}, st.get("transport") or {}
    print("engine %s: store %d pages (%.0f MiB used of %.0f MiB), %d sets, %d local GET hits; "
          "remote GETs: %d hits, %d misses, %d stale; data plane: %d READs made, %d served "
          "(%.0f MiB), %d channels open" % (
              name, s["pages"], s["bytes_used"] / 2**20, s["segment_size"] / 2**20, s["sets"],
              s["get_hits"], rem.get("hits", 0), rem.get("misses", 0), rem.get("stale", 0),
              x.get("reads_ok", 0), x.get("serve_requests", 0),
              x.get("serve_bytes", 0) / 2**20, x.get("channels_open", 0)))
lib.pc_client_close(a)
lib.pc_client_close(b)
sys.exit(1 if status else 0)
PY
	fail "the client failed (a SET, GET, byte check or EXISTS count)"
fi

echo
echo "== Stopping both with SIGTERM"
kill -TERM "$pid_b" "$pid_a"
rc_a=0
rc_b=0
wait "$pid_b" || rc_b=$?
wait "$pid_a" || rc_a=$?
pid_a=
pid_b=
for name in A B; do
	log=$log_a
	[ "$name" = B ] && log=$log_b
	echo "-- engine $name"
	grep -E 'session [0-9]+ .*(opened|closed)|received: stopping|\((control|worker)\)|stopped' "$log" || true
done
[ "$rc_a" -eq 0 ] || fail "engine A exited with $rc_a"
[ "$rc_b" -eq 0 ] || fail "engine B exited with $rc_b"
echo "demo: both engines stopped cleanly (exit 0)"
