#!/bin/sh
# make fuzz: runs each harness DIR/fuzz_TARGET for SECONDS on its corpus
# (DIR/corpus/TARGET, kept between runs) and seeds (DIR/seeds/TARGET), at
# most JOBS at a time, then prints one line per target: executions, their
# rate, corpus size, coverage, crashes. Exits 1 when any harness found a
# crash, a hang or an invariant violation; the input is kept and its path
# printed (and tried again first on the next run: dropped once it passes).
# Logs in DIR/logs/TARGET.log.
#
#     run.sh DIR SECONDS JOBS TARGET...
set -u
DIR=$1 SECONDS_EACH=$2 JOBS=$3
shift 3
# A single input taking this long is a hang (a reader that never ends).
INPUT_TIMEOUT=25

mkdir -p "$DIR/logs"
run_one() {
	t=$1
	mkdir -p "$DIR/corpus/$t" "$DIR/crashes/$t" "$DIR/seeds/$t"
	# Inputs kept by an earlier run: those that pass now were fixed.
	for f in "$DIR/crashes/$t"/*; do
		[ -f "$f" ] || continue
		"$DIR/fuzz_$t" -timeout="$INPUT_TIMEOUT" "$f" >/dev/null 2>&1 && rm -f "$f"
	done
	"$DIR/fuzz_$t" -max_total_time="$SECONDS_EACH" -timeout="$INPUT_TIMEOUT" \
		-rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$DIR/crashes/$t/" \
		"$DIR/corpus/$t" "$DIR/seeds/$t" >"$DIR/logs/$t.log" 2>&1
	echo $? >"$DIR/logs/$t.rc"
}

TARGETS="$*"
echo "fuzz: $# targets, ${SECONDS_EACH}s each, $JOBS at a time"
# Every run takes SECONDS: waiting for the oldest one keeps JOBS busy.
pids=""
for t in $TARGETS; do
	rm -f "$DIR/logs/$t.rc"
	run_one "$t" &
	pids="$pids $!"
	set -- $pids
	if [ $# -ge "$JOBS" ]; then
		wait "$1"
		shift
		pids="$*"
	fi
done
wait

# The figures, from libFuzzer's final statistics and its last status line.
stat_of() { sed -n "s/^stat::$1: *//p" "$2" | tail -n 1; }
last_of() { grep -E '#[0-9]+[[:space:]]+(DONE|pulse|NEW|REDUCE|INITED)' "$2" | tail -n 1 |
	sed -n "s/.* $1: \([0-9]*\).*/\1/p"; }

fail=0
printf "fuzz: %-10s %12s %8s %7s %6s %7s %s\n" target executions exec/s corpus cov ft crashes
for t in $TARGETS; do
	log="$DIR/logs/$t.log"
	rc=$(cat "$DIR/logs/$t.rc" 2>/dev/null || echo "none")
	crashes=$(find "$DIR/crashes/$t" -type f | wc -l)
	printf "fuzz: %-10s %12s %8s %7s %6s %7s %s\n" "$t" \
		"$(stat_of number_of_executed_units "$log")" "$(stat_of average_exec_per_sec "$log")" \
		"$(last_of corp "$log")" "$(last_of cov "$log")" "$(last_of ft "$log")" "$crashes"
	if [ "$rc" != 0 ] || [ "$crashes" != 0 ]; then
		fail=1
		echo "fuzz: $t: FAILED (exit $rc), log $log" >&2
		find "$DIR/crashes/$t" -type f | sed "s/^/fuzz: $t: input kept: /" >&2
		grep -m 3 -E 'FUZZ INVARIANT|ERROR: (AddressSanitizer|libFuzzer)|runtime error' "$log" |
			sed "s/^/fuzz: $t: /" >&2
	fi
done
exit $fail
