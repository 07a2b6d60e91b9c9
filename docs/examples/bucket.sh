# Straight from a bucket, loading JSON into a table, coordinated through PostgreSQL.
# AWS_ENDPOINT_URL (or AWS itself), credentials and DATABASE_URL come from the environment.
python - <<'PY'
import boto3
s3 = boto3.client("s3")
s3.create_bucket(Bucket="drop")
for minute in ("00", "15", "30", "45"):
    s3.put_object(Bucket="drop", Key=f"day/2018_06_28_00_{minute}.txt",
                  Body=b'{"id": 1, "what": "hello"}\n{"id": 2, "what": "world"}\n')
PY
psql "$DATABASE_URL" -c "CREATE TABLE IF NOT EXISTS events (id bigint, what text)"
ingestd run s3://drop/day --ledger "$DATABASE_URL" --handler pg --pg-table events \
    --exit-when-idle 2 --rescan-interval 1
ingestd verify s3://drop/day --ledger "$DATABASE_URL" --expect 4
psql "$DATABASE_URL" -tAc "SELECT count(*) FROM events"   # 8 rows: each file's once
