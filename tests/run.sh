#!/usr/bin/env bash
# Run PeerCache's test suites: tests/run.sh [all|unit|integration|python|fuzz]
#
# unit         every CUnit binary under $PEERCACHE_BUILD/tests (one per source file)
# integration  Python unittest over real engine processes (tests/integration)
# python       the SGLang backend package (client/python/peercache) driven as SGLang
#              drives it, against real engines (client/python/tests, unittest)
# fuzz         every libFuzzer target for $FUZZ_SECONDS seconds on its seed corpus
#
# Prints each suite's own summary, then one closing line
# "tests: N passed, N failed" that counts individual tests (CUnit tests,
# unittest tests, one per fuzz target). Exits non-zero on any failure.
set -u
mode=${1:-all}
BUILD=${PEERCACHE_BUILD:-build}
PYTHON=${PYTHON:-python3}
FUZZ_SECONDS=${FUZZ_SECONDS:-20}
export PEERCACHE_BUILD=$BUILD
# Third-party leaks that ASan builds must not fail on (see the file); every
# test binary and every engine started by the integration tests inherits it.
export LSAN_OPTIONS="suppressions=$(pwd)/tests/lsan.supp${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
# Suppressions match function names, so reports must be symbolized (package llvm).
if command -v llvm-symbolizer >/dev/null; then
	export ASAN_SYMBOLIZER_PATH=${ASAN_SYMBOLIZER_PATH:-$(command -v llvm-symbolizer)}
fi

passed=0
failed=0
failed_suites=()
logdir=$(mktemp -d)
trap 'rm -rf "$logdir"' EXIT

# count_cunit LOG: add the "tests" row of CUnit's run summary to the totals.
count_cunit() {
	local row
	row=$(awk '$1 == "tests" && NF >= 5 { print $3, $4, $5 }' "$1" | tail -n 1)
	if [ -z "$row" ]; then
		return 1
	fi
	set -- $row
	passed=$((passed + $2))
	failed=$((failed + $3))
	# Tests registered but not run (a fatal suite error) count as failures.
	[ "$1" -eq "$2" ] || failed=$((failed + 1))
	return 0
}

# find_bins DIR SUFFIX: set $bins to the executables under DIR named *SUFFIX.
# Finding none is a failure (a build that produced no tests is not a pass).
find_bins() {
	bins=$(find "$1" -type f -name "*$2" -perm -u+x 2>/dev/null | sort)
	if [ -z "$bins" ]; then
		echo "run.sh: no *$2 binaries under $1 (run make first)" >&2
		failed=$((failed + 1))
	fi
}

run_unit() {
	find_bins "$BUILD/tests" _ut
	for bin in $bins; do
		# Two statements: bash expands all of a `local` line before assigning any of it.
		local name=${bin#"$BUILD"/tests/} log rc
		log="$logdir/$(echo "$name" | tr / _).log"
		echo "=== unit: $name"
		timeout 600 "$bin" >"$log" 2>&1
		rc=$?
		cat "$log"
		if ! count_cunit "$log"; then
			echo "run.sh: $name printed no CUnit summary (exit $rc)"
			failed=$((failed + 1))
		elif [ "$rc" -ne 0 ] && ! awk '$1 == "tests" && $5 != 0 { f = 1 } END { exit !f }' "$log"; then
			# Every test passed but the binary failed after (a crash, a leak report).
			failed=$((failed + 1))
		fi
		[ "$rc" -eq 0 ] || failed_suites+=("unit: $name (exit $rc)")
	done
}

# run_pyunit NAME DIR: unittest discovery over DIR (test_*.py), counted per test.
run_pyunit() {
	local name=$1 dir=$2 log="$logdir/$1.log" rc ran fails errors
	local preload=
	echo "=== $name (python unittest: $dir)"
	# An ASan build's libpeercache.so is loaded into Python through ctypes:
	# the ASan runtime must then come first in the process, so Python gets it
	# preloaded (and does not report its own leaks). Engine processes are
	# ASan-linked themselves; the tests start them with the original
	# environment, leak checking included (PEERCACHE_CHILD_ASAN_OPTIONS).
	if grep -q 'fsanitize=address' "$BUILD/.cflags" 2>/dev/null; then
		preload=$(${CC:-gcc} -print-file-name=libasan.so)
	fi
	if [ -n "$preload" ] && [ -e "$preload" ]; then
		PEERCACHE_CHILD_ASAN_OPTIONS=${ASAN_OPTIONS:-} LD_PRELOAD=$preload \
			ASAN_OPTIONS=detect_leaks=0${ASAN_OPTIONS:+:$ASAN_OPTIONS} \
			timeout 900 "$PYTHON" -m unittest discover -s "$dir" -p 'test_*.py' -v \
			>"$log" 2>&1
	else
		timeout 900 "$PYTHON" -m unittest discover -s "$dir" -p 'test_*.py' -v \
			>"$log" 2>&1
	fi
	rc=$?
	cat "$log"
	ran=$(sed -n 's/^Ran \([0-9]*\) tests\{0,1\}.*/\1/p' "$log" | tail -n 1)
	fails=$(sed -n 's/.*failures=\([0-9]*\).*/\1/p' "$log" | tail -n 1)
	errors=$(sed -n 's/.*errors=\([0-9]*\).*/\1/p' "$log" | tail -n 1)
	ran=${ran:-0}
	fails=$((${fails:-0} + ${errors:-0}))
	if [ "$ran" -eq 0 ]; then
		fails=1
	fi
	passed=$((passed + ran - (fails > ran ? ran : fails)))
	failed=$((failed + fails))
	[ "$rc" -eq 0 ] || failed_suites+=("$name (exit $rc)")
}

run_integration() {
	run_pyunit integration tests/integration
}

# The package finds the build through PEERCACHE_BUILD (the tests set PEERCACHE_LIB and
# PEERCACHE_BIN from it) and is imported from the checkout: no pip install needed.
run_python() {
	run_pyunit python client/python/tests
}

run_fuzz() {
	find_bins "$BUILD/fuzz" _fuzz
	for bin in $bins; do
		local name seeds work log="$logdir/fuzz.log" rc
		name=$(basename "$bin" _fuzz)
		seeds=tests/fuzz/corpus/$name
		work=$(mktemp -d)
		echo "=== fuzz: $name (${FUZZ_SECONDS}s)"
		# New inputs go to a scratch corpus; the committed seeds stay as they are.
		timeout $((FUZZ_SECONDS + 120)) "$bin" -max_total_time="$FUZZ_SECONDS" \
			-print_final_stats=1 -artifact_prefix="$work/" "$work" "$seeds" >"$log" 2>&1
		rc=$?
		grep -E 'stat::number_of_executed_units|stat::peak_rss_mb|ERROR|SUMMARY|Done' "$log"
		if [ "$rc" -eq 0 ]; then
			passed=$((passed + 1))
		else
			tail -n 60 "$log"
			for crash in "$work"/crash-* "$work"/leak-* "$work"/timeout-*; do
				[ -e "$crash" ] && echo "reproducer: $crash" && cp "$crash" "$BUILD/fuzz/"
			done
			failed=$((failed + 1))
			failed_suites+=("fuzz: $name (exit $rc)")
		fi
		rm -rf "$work"
	done
}

case $mode in
all) run_unit; run_integration; run_python; run_fuzz ;;
unit) run_unit ;;
integration) run_integration ;;
python) run_python ;;
fuzz) run_fuzz ;;
*) echo "usage: $0 [all|unit|integration|python|fuzz]" >&2; exit 2 ;;
esac

echo
for s in "${failed_suites[@]+"${failed_suites[@]}"}"; do
	echo "FAILED: $s"
done
echo "tests: $passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ ${#failed_suites[@]} -eq 0 ]
