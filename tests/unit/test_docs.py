"""What the docs promise must follow the code: the reference pages are what
`tools/reference.py` writes from the code now, the events the monitoring guide explains are
those the code logs, and the README stays short and keeps its two commands."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# log.info("event", ...), self.log.warning(\n "event" ...), recording.stalled(log, "event", ...)
_CALL = re.compile(
    r"(?:\.(?:debug|info|warning|error|exception)|\bstalled)\(\s*(?:log,\s*)?\"([a-z_]+)\""
)


def events_in_code() -> set[str]:
    found: set[str] = set()
    for path in (ROOT / "ingestd").rglob("*.py"):
        found.update(_CALL.findall(path.read_text()))
    return found


def events_in_readme() -> set[str]:
    text = (ROOT / "docs" / "guides" / "monitoring.md").read_text()
    section = text.split("## Logs", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"`([a-z_]+)`", section))


def test_every_event_the_code_logs_is_in_the_readme() -> None:
    code = events_in_code()
    assert len(code) > 30  # the pattern still finds the calls
    assert sorted(code - events_in_readme()) == []


def test_the_readme_lists_no_event_the_code_does_not_log() -> None:
    fields = {
        "attempt", "taken_over_from", "minutes", "error", "files_processed", "total_time",
        "sum_of_squares", "files", "timestamp", "level", "event", "worker", "file", "retry",
        "signal", "still_running", "released_unfinished", "streak", "hint", "rows", "table",
            "reason", "action", "via", "earlier", "newest_finished", "outputs", "published",
        "blocked_keys", "left_waiting", "recorded_sha256", "recorded_version", "sha256",
        "version", "source", "ledger", "data_dir", "state_dir", "claims_resume_in",
        "url", "actions", "who", "result", "rejected", "first_line", "first_error", "columns",
        "deleted", "load_id", "replaces", "requested_by",
    }  # fmt: skip
    assert sorted(events_in_readme() - events_in_code() - fields) == []


def test_the_reference_pages_are_what_the_code_says() -> None:
    out = subprocess.run([sys.executable, str(ROOT / "tools" / "reference.py"), "--check"],
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    assert out.returncode == 0, out.stderr


def test_a_new_option_changes_its_page(monkeypatch) -> None:
    sys.path.insert(0, str(ROOT / "tools"))
    import reference

    from ingestd.runtime import settings

    before = reference.commands_page()
    extra = settings.Option("brand_new", str, "a new option", metavar="X")
    monkeypatch.setattr(reference, "OPTIONS", (*settings.OPTIONS, extra))
    assert "`INGESTD_BRAND_NEW`" in reference.commands_page() != before


def test_the_readme_is_short_and_keeps_its_two_commands() -> None:
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 200
    assert "make demo" in text and "make test" in text
    for link in re.findall(r"\]\((docs/[^)#]+)", text):
        assert (ROOT / link).exists(), link
