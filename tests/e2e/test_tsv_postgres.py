"""The tsv handler's output loaded by a real PostgreSQL COPY: every value round-trips."""

from __future__ import annotations

import gzip
import json
import random
from pathlib import Path
from typing import Any

import pytest
from conftest import manifest_records

NASTY = [
    "", " ", "\t", "\n", "\r\n", "\\", "\\N", "\\t", "a\tb\nc\rd\\e", "NULL", "null", "'", '"',
    "ünïcødé", "😀🚀", "\u2028\u2029", "\x01\x1f", "tab at end\t", "\\\\", "{}", "[1,2]", "t", "f",
]  # fmt: skip


def generate(rng: random.Random, start: int, count: int) -> list[dict[str, Any]]:
    out = []
    for i in range(start, start + count):
        record: dict[str, Any] = {"id": i, "text": rng.choice(NASTY) + rng.choice(NASTY)}
        if rng.random() < 0.8:
            record["flag"] = rng.choice([True, False, None])
        if rng.random() < 0.7:
            record["num"] = rng.choice([0, -1, 2**53, 3.25, -1e-7, 12345678901234567890])
        if rng.random() < 0.6:
            record["nested"] = {"k": rng.choice(NASTY), "list": [1, None, rng.choice(NASTY)]}
        out.append(record)
    return out


def expected_text(value: Any) -> str | None:
    """What a text column must hold after COPY of the value."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return json.dumps(value)
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


@pytest.mark.postgres
def test_daemon_output_loads_into_postgresql_unchanged(tmp_path: Path, spawn, pg) -> None:
    rng = random.Random(42)
    data, out = tmp_path / "drop", tmp_path / "out"
    data.mkdir()
    source: list[dict[str, Any]] = []
    for i in range(4):
        rows = generate(rng, len(source), 60)
        source += rows
        text = "".join(
            json.dumps(r, ensure_ascii=i % 2 == 0) + ("\n" if i < 2 else " ") for r in rows
        )
        payload = text.encode()
        (data / f"2018_06_28_00_{i:02d}.txt").write_bytes(
            gzip.compress(payload) if i == 3 else payload
        )
    columns = ["id", "text", "flag", "num", "nested"]
    w = spawn(data, "--handler", "tsv", "--output-dir", str(out), "--columns", ",".join(columns),
              "--exit-when-idle", "0.5")  # fmt: skip
    assert w.wait() == 0
    records = manifest_records(data)
    assert [r["status"] for r in records] == ["done"] * 4
    assert sum(r["records"] for r in records) == len(source)
    ddl = ", ".join(f'"{c}" text' for c in columns)
    pg.psql("DROP TABLE IF EXISTS t", f"CREATE TABLE t ({ddl})")
    for tsv in sorted(out.glob("*.tsv")):
        pg.psql(f"\\copy t FROM '{tsv}'")
    loaded = json.loads(pg.psql("SELECT json_agg(t ORDER BY id::int) FROM t"))
    assert len(loaded) == len(source)
    for row, original in zip(loaded, source, strict=True):
        for column in columns:
            assert row[column] == expected_text(original.get(column)), (column, original)
        if row["nested"] is not None:
            assert json.loads(row["nested"]) == original["nested"]
