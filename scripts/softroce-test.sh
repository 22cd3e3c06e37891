#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
#
# softroce-test.sh: the remote-GET integration tests (tests/integration/test_remote.py,
# RemoteGet) with protocol = "rdma", over Soft-RoCE (the kernel's rdma_rxe), on one host.
#
#   sudo scripts/softroce-test.sh [unittest names...]   (default: test_remote.RemoteGet)
#
# It needs root, a kernel with the rdma_rxe module, and iproute2's `rdma` tool. Where any of
# these is missing it says which and exits 0 without running anything ("skipped"): the
# regular suite (make test) covers the same cases over tcp, and the rdma code through stubs
# of the verbs calls.
#
# Set-up, removed on exit: two veth pairs (pcrxe0a/b, pcrxe1a/b) with 10.77.0.1..4/24, one
# rxe device on each end (pcrxe0a ... named after its netdev), and the engines of the tests
# bound one per address with that address's device (gid_index 1: the IPv4 GID rxe adds
# after the link-local one; PEERCACHE_TEST_GID_INDEX overrides it). The engines must log
# that they read over rdma, so a silent fallback to tcp fails the run.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)

skip() {
	echo "softroce-test: skipped: $*"
	exit 0
}

[ "$(id -u)" -eq 0 ] || skip "needs root (loads rdma_rxe, adds links and rxe devices)"
command -v ip >/dev/null || skip "needs iproute2's ip"
command -v rdma >/dev/null || skip "needs iproute2's rdma tool"
modprobe rdma_rxe 2>/dev/null || skip "this kernel has no rdma_rxe module (Soft-RoCE)"
[ -x "$root/build/peercache" ] || {
	echo "softroce-test: build the engine first: make" >&2
	exit 2
}

pairs=(pcrxe0 pcrxe1)
hosts=()
devs=()
cleanup() {
	for p in "${pairs[@]}"; do
		rdma link delete "${p}a" 2>/dev/null || true
		rdma link delete "${p}b" 2>/dev/null || true
		ip link delete "${p}a" 2>/dev/null || true
	done
}
trap cleanup EXIT

n=1
for p in "${pairs[@]}"; do
	ip link add "${p}a" type veth peer name "${p}b"
	for end in a b; do
		ip addr add "10.77.0.$n/24" dev "$p$end"
		ip link set "$p$end" up
		rdma link add "$p$end" type rxe netdev "$p$end"
		hosts+=("10.77.0.$n")
		devs+=("$p$end")
		n=$((n + 1))
	done
done
rdma link show

join() {
	local IFS=,
	echo "$*"
}

cd "$root/tests/integration"
export PEERCACHE_TEST_PROTOCOL=rdma
PEERCACHE_TEST_HOSTS=$(join "${hosts[@]}")
PEERCACHE_TEST_RDMA_DEVICES=$(join "${devs[@]}")
export PEERCACHE_TEST_HOSTS PEERCACHE_TEST_RDMA_DEVICES
export PEERCACHE_TEST_GID_INDEX="${PEERCACHE_TEST_GID_INDEX:-1}"
if [ $# -eq 0 ]; then
	set -- test_remote.RemoteGet
fi
echo "softroce-test: protocol rdma on ${PEERCACHE_TEST_RDMA_DEVICES} (${PEERCACHE_TEST_HOSTS})"
python3 -m unittest -v "$@"
