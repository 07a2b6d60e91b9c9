"""The console's pages, rendered from a board: every outside text escaped, counts and links."""

from __future__ import annotations

import re

from ingestd.console import pages
from ingestd.console.view import Board, Failure, last_failures

HOSTILE = "<script>alert(1)</script>\"'\x1b[31m&"


def board(**report: object) -> Board:
    base = {"done": 3, "failed": 1, "pending": 2, "in_progress": [], "workers": [],
            "paused": False}  # fmt: skip
    return Board({**base, **report}, [], gathered_at=1_000.0, took=0.01)


def test_text_escapes_markup_quotes_and_control_characters() -> None:
    assert pages.text(HOSTILE) == (
        "&lt;script&gt;alert(1)&lt;/script&gt;&quot;&#x27;\\x1b[31m&amp;"
    )


def test_a_file_link_quotes_the_path_and_escapes_the_text() -> None:
    link = pages.file_link("<b>_2018_06_28_00_00.txt")
    assert link == (
        '<a href="/files/%3Cb%3E_2018_06_28_00_00.txt">&lt;b&gt;_2018_06_28_00_00.txt</a>'
    )


def test_the_board_shows_the_counts_and_escapes_every_name() -> None:
    report = {
        "in_progress": [{"file": HOSTILE, "worker": HOSTILE, "attempt": 1, "age_seconds": 4}],
        "workers": [
            {
                "worker": HOSTILE,
                "host": HOSTILE,
                "state": "running",
                "files_processed": 3,
                "in_hand": {HOSTILE: 1.0},
                "started_at": "",
                "age_seconds": 1.0,
            }
        ],
        "lost_workers": [
            {
                "worker": "gone-1",
                "host": "h",
                "files_processed": 0,
                "in_hand": {},
                "started_at": "",
                "age_seconds": 99.0,
            }
        ],
        "keys": {HOSTILE: {"done": 1, "failed": 0, "waiting": 0, "low_watermark": HOSTILE}},
        "blocked_keys": {HOSTILE: HOSTILE},
        "problems": [HOSTILE],
        "publish_errors": {HOSTILE: HOSTILE},
    }
    shown = board(**report)
    shown = Board(shown.report, [Failure(HOSTILE, HOSTILE, HOSTILE, "t")], 1_000.0, 0.01)
    html = pages.board_page(shown, HOSTILE, 5.0)
    assert "<script>alert" not in html and "\x1b" not in html
    assert html.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 10
    assert re.search(r'id="count-done">3<', html) and re.search(r'id="count-failed">1<', html)
    assert 'id="count-in-progress">1<' in html
    assert "LOST" in html and "gone-1" in html
    holds = re.search(
        r"<td>&lt;script[^<]*</td><td>[^<]*</td><td>running</td><td>3</td><td>(.*?)</td>", html
    )
    assert holds and holds.group(1).startswith('<a href="/files/')  # the claim it holds
    # Only the page's own script and stylesheet, never an inline one.
    assert html.count("<script") == 1 and 'src="/static/console.js"' in html
    assert "style=" not in html and "<style" not in html


def test_a_paused_fleet_and_a_failed_reading_are_said() -> None:
    shown = board(paused=True)
    shown = Board(shown.report, [], 1_000.0, 0.01, error="OperationalError: <down>")
    html = pages.board_page(shown, "d", 5.0)
    assert 'id="paused"' in html
    assert "cannot read the ledger: OperationalError: &lt;down&gt;" in html


def test_actions_appear_only_when_given() -> None:
    assert "<form" not in pages.board_page(board(), "d", 5.0)
    aside = pages.actions_form()
    assert aside.count('method="post"') == 3 and 'type="password"' in aside
    one = pages.actions_form(HOSTILE)
    assert 'action="/actions/retry"' in one and "<script>" not in one


def test_the_file_page_says_the_state_and_the_history() -> None:
    explained = {"file": HOSTILE, "state": "failed", "why": HOSTILE,
                 "history": [{"what": "record", "detail": HOSTILE}]}  # fmt: skip
    html = pages.file_page(explained, "d", 5.0)
    assert 'class="state failed"' in html and "<script>alert" not in html
    assert html.count("&lt;script&gt;") == 4  # title, heading, why, history


def test_a_message_page_does_not_refresh_itself() -> None:
    html = pages.message_page("retry", "done", "d")
    assert 'data-refresh="0"' in html and "http-equiv" not in html


def test_ages_read_like_a_person_would_say_them() -> None:
    assert [pages.ago(s) for s in (None, 5, 600, 7200, 300_000)] == [
        "-", "5 s", "10.0 min", "2.0 h", "3.5 d",
    ]  # fmt: skip


def test_the_last_failures_are_the_newest_first_and_data_files_only() -> None:
    class Rec:
        def __init__(self, at: str) -> None:
            self.error, self.worker, self.finished_at = "bad", "w", at

    failed = {"2018_06_28_00_00.txt": Rec("2026-01-01T00:00:01"),
              "2018_06_28_00_15.txt": Rec("2026-01-01T00:00:03"),
              "notes.txt": Rec("2026-01-01T00:00:09")}  # fmt: skip
    rows = last_failures(failed)
    assert [f.file for f in rows] == ["2018_06_28_00_15.txt", "2018_06_28_00_00.txt"]
