"""CHANGELOG.md keeps up with what users see: every option, command, log event and metric the
code has, and the PostgreSQL schema's version, is named in it. A change that adds one without
a changelog line fails here."""

from __future__ import annotations

import re
from pathlib import Path

from ingestd.commands.cli import COMMANDS
from ingestd.postgres.schema import SCHEMA_VERSION
from ingestd.runtime.settings import OPTIONS
from unit.test_docs import events_in_code

ROOT = Path(__file__).resolve().parents[2]
TEXT = (ROOT / "CHANGELOG.md").read_text()
NAMED = set(re.findall(r"`([^`]+)`", TEXT))


def _named(things: set[str]) -> list[str]:
    """What is named nowhere in the changelog (inside backticks, alone or leading a phrase)."""
    words = {part for name in NAMED for part in re.split(r"[\s|=]+", name)}
    return sorted(t for t in things if t not in NAMED and t not in words)


def test_every_option_is_in_the_changelog() -> None:
    assert _named({option.cli for option in OPTIONS}) == []


def test_every_command_is_in_the_changelog() -> None:
    assert _named(set(COMMANDS)) == []


def test_every_event_is_in_the_changelog() -> None:
    assert _named(events_in_code()) == []


def test_every_metric_is_in_the_changelog() -> None:
    from ingestd.runtime.metrics import WorkerMetrics

    metrics = {
        family.name + ("_total" if family.type == "counter" else "")
        for family in WorkerMetrics().registry.collect()
    }
    assert len(metrics) > 10
    assert _named(metrics) == []


def test_the_schema_version_is_in_the_changelog() -> None:
    assert f"schema is at version {SCHEMA_VERSION}" in TEXT


def test_the_latest_section_is_unreleased_or_the_code_s_version() -> None:
    from ingestd import __version__

    first = re.search(r"^## \[([^\]]+)\]", TEXT, re.MULTILINE)
    assert first is not None
    if __version__.split(".dev")[0] != first.group(1):
        assert first.group(1) == "Unreleased", (first.group(1), __version__)
