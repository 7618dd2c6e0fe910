#!/bin/sh
# Runs every fuzz target for FUZZTIME (default 10s) each.
#
# Go 1.26's fuzzing coordinator can fail a target with a bare "context
# deadline exceeded" when -fuzztime ends while a worker is mid-input
# (golang/go#75804, fixed in Go 1.27): such a run, which wrote no failing
# input, is run once more. A failing input, or any other failure, fails at
# once.
set -u
GO=${GO:-go}
time=${FUZZTIME:-10s}
for pkg in ./pkg/decode/ ./internal/jsonscan/ ./pkg/inspect/ ./pkg/gateway/; do
	for target in $($GO test -list '^Fuzz' "$pkg" | grep '^Fuzz'); do
		try=1
		while :; do
			echo "fuzz $pkg $target ($time)"
			out=$($GO test -run '^$' -fuzz "^$target\$" -fuzztime "$time" "$pkg" 2>&1)
			rc=$?
			if [ $rc -eq 0 ]; then
				echo "$out" | tail -1
				break
			fi
			if [ $try -eq 1 ] && echo "$out" | grep -q 'context deadline exceeded' &&
				! echo "$out" | grep -q 'Failing input written'; then
				echo "fuzz: $target stopped on Go's fuzzing deadline race (golang/go#75804), no failing input: once more"
				try=2
				continue
			fi
			echo "$out"
			exit 1
		done
	done
done
