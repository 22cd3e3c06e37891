#!/usr/bin/env bash
# Install every Debian package that PeerCache's build, tests and demo need.
# Idempotent and quiet: packages already installed are skipped; a package that
# cannot be installed is named and the script exits non-zero.
#
#   scripts/install-deps.sh           build, tests, lint, demo
#   scripts/install-deps.sh --bench   also what make bench runs against: redis-server
#                                     (the redis baseline) and gnuplot-nox (--plot)
set -euo pipefail

# libhiredis-dev is here, not under --bench: make lint reads bench/peercache-bench.c,
# which includes hiredis's header.
PACKAGES=(
	build-essential pkg-config
	dpdk-dev libdpdk-dev libnuma-dev
	libibverbs-dev rdma-core
	libconfig-dev libcunit1-dev liburing-dev libsodium-dev libhiredis-dev
	clang clang-format clang-tidy cppcheck libclang-rt-14-dev llvm
	python3 iproute2 procps
)
BENCH_PACKAGES=(redis-server gnuplot-nox)

case "${1:-}" in
'') ;;
--bench) PACKAGES+=("${BENCH_PACKAGES[@]}") ;;
*)
	echo "usage: scripts/install-deps.sh [--bench]" >&2
	exit 2
	;;
esac

missing=()
for p in "${PACKAGES[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
		missing+=("$p")
	fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	SUDO=sudo
else
	SUDO=
fi

echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
if ! $SUDO apt-get -qq update >/dev/null; then
	echo "install-deps: apt-get update failed" >&2
	exit 1
fi
if ! $SUDO apt-get -qq install -y --no-install-recommends "${missing[@]}" >/dev/null; then
	# Retry one by one so the failing package is named.
	for p in "${missing[@]}"; do
		if ! $SUDO apt-get -qq install -y --no-install-recommends "$p" >/dev/null; then
			echo "install-deps: cannot install Debian package '$p'" >&2
			exit 1
		fi
	done
fi
