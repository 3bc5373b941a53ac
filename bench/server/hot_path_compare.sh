#!/usr/bin/env bash
# Runs bench_server_hot_path against two lvs-server binaries, interleaved
# (before, after, before, after, ...), REPEATS times each, and prints every
# result line tagged with the binary and the load average at its start.
# Usage: bench/server/hot_path_compare.sh BENCH BEFORE_SERVER AFTER_SERVER
#          [REPEATS] [--smoke] [bench flags...]
# Bench flags (e.g. --seconds=5 --watchers=50) go to every case. --smoke
# runs every case once per binary at the smallest sizes (a few seconds; a
# check that the script, the bench and the servers still work together, no
# figures) and fails unless each case printed its line with no errors.
set -euo pipefail
if (($# < 3)); then
  sed -n '5,6p' "$0" | sed 's/^# //' >&2
  exit 2
fi
bench="$1" before="$2" after="$3"
repeats="${4:-3}"
shift $(($# < 4 ? $# : 4))
smoke=0
flags=()
for f in "$@"; do
  if [[ "$f" == --smoke ]]; then
    smoke=1
    flags+=(--seconds=1 --clients=4 --jobs=1 --watchers=2 --chunks=3
      --chunk-bytes=4096 --interval-ms=10 --streams=10)
  else
    flags+=("$f")
  fi
done
((smoke)) && repeats=1
# Whether a result line shows a clean run: durable admissions without
# errors, every stream and chunk delivered.
ok() {
  awk '{
    for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
    bad = tolower(v["durable"]) == "no" || v["errors"] > 0 || v["failed_streams"] > 0 ||
          ("received" in v && v["received"] != v["expected"]) ||
          ("open" in v && v["open"] != v["streams"])
    exit bad
  }' <<<"$1"
}
cases=(admission admission1 stream idle)
lines=0
for ((i = 1; i <= repeats; i++)); do
  for which in before after; do
    server="$before"
    [[ "$which" == after ]] && server="$after"
    for c in "${cases[@]}"; do
      load="$(cut -d' ' -f1-3 /proc/loadavg)"
      out="$("$bench" --server="$server" --case="$c" "${flags[@]}")"
      while IFS= read -r line; do
        [[ -n "$line" ]] || continue
        echo "build=$which run=$i load=\"$load\" $line"
        [[ "$line" == case=* ]] && lines=$((lines + 1))
        if ((smoke)) && ! ok "$line"; then
          echo "smoke: $which $c reported errors" >&2
          exit 1
        fi
      done <<<"$out"
    done
  done
done
if ((smoke && lines != 2 * ${#cases[@]})); then
  echo "smoke: $lines result lines, expected $((2 * ${#cases[@]}))" >&2
  exit 1
fi
