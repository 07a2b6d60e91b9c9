#!/usr/bin/env bash
# The provider's setup: two workers started first, then the provider, at 0.01 s per
# simulated minute (the appendix day, 96 files, in about 15 seconds). Shows each worker's
# stats lines, prefixed with its name, then the fleet's status and an audit of the manifest;
# the web console serves the fleet's page meanwhile (CONSOLE=HOST:PORT, default 127.0.0.1:9465).
set -euo pipefail
cd "$(dirname "$0")/.."
RUN=demo-run
SPEED=${SPEED:-0.01}
rm -rf "$RUN"
mkdir -p "$RUN"
DROP="$RUN/drop"

worker() {  # worker NAME: run one worker; keep its full log, show its key lines
    python -m ingestd "$DROP" --worker-id "$1" --seconds-in-min "$SPEED" --log-format console \
        --rescan-interval 0.5 --exit-when-idle 3 2>&1 \
        | tee "$RUN/$1.log" \
        | grep --line-buffered -E "Files processed|worker_started|waiting_for_directory|file_failed|shutdown" \
        | sed -u -e "s/^[^ ]* //" -e "s/^/[$1] /"
}

echo "== two workers, started before the directory exists"
worker worker-a &
wa=$!
worker worker-b &
wb=$!
sleep 1
echo "== the provider: 96 files at ${SPEED} s per simulated minute"
start=$(date +%s.%N)
python simulation.py "$DROP" --seconds-in-min "$SPEED" --arrivals "$RUN/arrivals.jsonl" &
sim=$!
sleep 1
CONSOLE=${CONSOLE:-127.0.0.1:9465}
python -m ingestd console "$DROP" --listen "$CONSOLE" --refresh 1 --log-format json \
    > "$RUN/console.log" 2>&1 &
console=$!
trap 'kill "$console" 2>/dev/null || true' EXIT
echo "== the console: http://$CONSOLE/ (live while the demo runs; log in $RUN/console.log)"
sleep 5
echo
echo "== ingestd status $DROP (while it runs)"
python -m ingestd status "$DROP" | sed 's/^/   /' || true
echo
wait "$sim"
wait "$wa" "$wb"
end=$(date +%s.%N)
echo
echo "== ingestd status $DROP"
python -m ingestd status "$DROP" || true
echo
echo "== ingestd verify $DROP --expect 96"
python -m ingestd verify "$DROP" --expect 96
echo
echo "== ingestd timeline $DROP --output $RUN/timeline.png"
python -m ingestd timeline "$DROP" --output "$RUN/timeline.png"
echo "demo wall time: $(python -c "print(round($end - $start, 1))") s (full logs in $RUN/)"
