# Two workers on one directory, then the fleet's status and an audit.
# (WORK is where it all happens: any empty directory.)
WORK=${WORK:-$(mktemp -d)}
mkdir -p "$WORK/drop"
for minute in 00 15 30 45; do
    echo 15 > "$WORK/drop/2018_06_28_00_$minute.txt"   # a file worth 15 simulated minutes
done
ingestd run "$WORK/drop" --seconds-in-min 0.01 --exit-when-idle 2 --worker-id a &
ingestd run "$WORK/drop" --seconds-in-min 0.01 --exit-when-idle 2 --worker-id b &
wait
ingestd status "$WORK/drop"
ingestd verify "$WORK/drop" --expect 4
