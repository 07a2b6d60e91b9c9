"""What every PostgreSQL part shares: connecting, ingestd's own schema, reading errors by
SQLSTATE, the watermark table. Used by the ledger, the `pg` handler and publishing."""
