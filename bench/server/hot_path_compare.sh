#!/usr/bin/env bash
# Runs bench_server_hot_path against two lvs-server binaries, interleaved
# (before, after, before, after, ...), REPEATS times each, and prints every
# result line tagged with the binary and the load average at its start.
# Usage: bench/server/hot_path_compare.sh BENCH BEFORE_SERVER AFTER_SERVER
#          [REPEATS] [bench flags...]
set -euo pipefail
bench="$1" before="$2" after="$3"
repeats="${4:-3}"
shift $(( $# < 4 ? $# : 4 ))
for ((i = 1; i <= repeats; i++)); do
  for which in before after; do
    server="$before"
    [[ "$which" == after ]] && server="$after"
    for c in admission admission1 stream idle; do
      load="$(cut -d' ' -f1-3 /proc/loadavg)"
      "$bench" --server="$server" --case="$c" "$@" |
        sed "s|^|build=$which run=$i load=\"$load\" |"
    done
  done
done
