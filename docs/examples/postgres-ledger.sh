# The same fleet coordinating through PostgreSQL: no state dir on the shared filesystem.
# DATABASE_URL names a database the workers may create a schema in.
WORK=${WORK:-$(mktemp -d)}
mkdir -p "$WORK/drop"
for minute in 00 15 30 45; do
    echo 15 > "$WORK/drop/2018_06_28_00_$minute.txt"
done
ingestd run "$WORK/drop" --ledger "$DATABASE_URL" --seconds-in-min 0.01 --exit-when-idle 2 &
ingestd run "$WORK/drop" --ledger "$DATABASE_URL" --seconds-in-min 0.01 --exit-when-idle 2 &
wait
ingestd verify "$WORK/drop" --ledger "$DATABASE_URL" --expect 4
