"""Pure: the console's pages as HTML, from a `Board` or an explanation.

Every name, key, worker id and error text passes through `text()`: HTML-escaped, control
characters shown as `\\xNN` (a file name is whatever the provider wrote). Pages carry no inline
script or style (the Content-Security-Policy forbids both): one stylesheet and one small
script, both served from `/static/`. The script only refreshes the board in place; without it
the page refreshes itself.
"""

from __future__ import annotations

import html
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from ingestd import __version__
from ingestd.console.view import Board
from ingestd.contracts.naming import terminal_safe


def text(value: object) -> str:
    return html.escape(terminal_safe("" if value is None else value), quote=True)


def file_link(name: str) -> str:
    return f'<a href="/files/{quote(name, safe="")}">{text(name)}</a>'


def link_or_dash(name: str | None) -> str:
    return file_link(name) if name else "-"


def ago(seconds: float | None) -> str:
    """12 s, 4.5 min, 3.2 h, 2.1 d."""
    if seconds is None:
        return "-"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def table(headings: Iterable[str], rows: list[list[str]], empty: str) -> str:
    """Cells are HTML already (escaped by the caller)."""
    if not rows:
        return f'<p class="none">{text(empty)}</p>'
    head = "".join(f"<th>{text(h)}</th>" for h in headings)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def section(title: str, body: str, id_: str) -> str:
    return f'<section id="{id_}"><h2>{text(title)}</h2>{body}</section>'


def page(title: str, label: str, main: str, refresh: float, aside: str = "") -> str:
    seconds = max(round(refresh), 1) if refresh > 0 else 0
    again = f'<noscript><meta http-equiv="refresh" content="{seconds}"></noscript>'
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{text(title)} · ingestd</title>"
        '<link rel="stylesheet" href="/static/console.css">'
        '<link rel="icon" href="/static/favicon.svg">'
        '<script src="/static/console.js" defer></script>'
        f"{again if seconds else ''}"
        "</head><body>"
        f'<header><a class="home" href="/">ingestd</a> <span class="label">{text(label)}</span>'
        "</header>"
        f'<main id="board" data-refresh="{seconds}">{main}</main>{aside}'
        f'<footer>ingestd {text(__version__)} · <a href="/metrics">metrics</a> · '
        '<a href="/healthz">healthz</a> · <a href="/readyz">readyz</a></footer>'
        "</body></html>"
    )


def freshness(board: Board, now: float | None = None) -> str:
    now = time.time() if now is None else now
    at = datetime.fromtimestamp(board.gathered_at, UTC).strftime("%H:%M:%S UTC")
    line = f"read {at} ({ago(now - board.gathered_at)} ago, in {board.took:.2f} s)"
    out = f'<p class="fresh" id="fresh">{text(line)}</p>'
    if board.error:
        out += f'<p class="alert" id="read-error">cannot read the ledger: {text(board.error)}'
        out += " (showing the last reading)</p>"
    return out


def counts(report: dict[str, Any]) -> str:
    cells = [
        ("done", report.get("done", 0)),
        ("failed", report.get("failed", 0)),
        ("pending", report.get("pending", 0)),
        ("in progress", len(report.get("in_progress", []))),
    ]
    boxes = "".join(
        f'<div class="count {name.replace(" ", "-")}"><b id="count-{name.replace(" ", "-")}">'
        f"{int(value)}</b> {name}</div>"
        for name, value in cells
    )
    paused = '<p class="alert" id="paused">PAUSED: no file is claimed (resume to go on)</p>'
    return f'<section class="counts">{boxes}</section>' + (paused if report.get("paused") else "")


def working(report: dict[str, Any]) -> str:
    rows = [
        [file_link(item["file"]), text(item.get("worker") or "-"), text(item.get("attempt") or "-"),
         text(ago(item.get("age_seconds")))]
        for item in report.get("in_progress", [])
    ]  # fmt: skip
    return table(("file", "worker", "attempt", "in hand for"), rows, "nothing in progress")


def waiting(report: dict[str, Any]) -> str:
    oldest = report.get("oldest_unprocessed_age_seconds")
    head = f"<p>backlog {int(report.get('pending', 0))}; oldest waiting {text(ago(oldest))}</p>"
    rows = [[file_link(w["file"]), text(ago(w["age_seconds"]))] for w in report.get("waiting", [])]
    return head + table(("file", "waiting for"), rows, "nothing waiting")


def workers(report: dict[str, Any]) -> str:
    # What each holds: the claims as read now (a heartbeat's own list may be seconds old).
    holds: dict[str, list[str]] = {}
    for item in report.get("in_progress", []):
        holds.setdefault(item.get("worker") or "", []).append(file_link(item["file"]))
    rows = []
    groups = (("", "workers"), ("LOST", "lost_workers"), ("gone", "gone_workers"),
              ("replaced", "replaced_workers"))  # fmt: skip
    for flag, group in groups:
        for beat in report.get(group, []):
            name, state = text(beat["worker"]), text(beat.get("state"))
            if flag:
                name, state = f'<span class="bad">{name}</span>', f'<span class="bad">{flag}</span>'
            held = ", ".join(holds.get(beat["worker"], [])) or "-"
            rows.append([name, text(beat.get("host")), state, text(beat.get("files_processed")),
                         held, text(beat.get("started_at")),
                         text(ago(beat.get("age_seconds")))])  # fmt: skip
    return table(("worker", "host", "state", "done", "holds", "started", "heartbeat"), rows,
                 "no worker has a heartbeat")  # fmt: skip


def keys(report: dict[str, Any]) -> str:
    blocked, published = report.get("blocked_keys", {}), report.get("published", {})
    rows = []
    for key, each in report.get("keys", {}).items():
        block = blocked.get(key)
        rows.append([text(key or "(none)"), text(each["done"]), text(each["failed"]),
                     text(each["waiting"]), link_or_dash(each["low_watermark"]),
                     link_or_dash(published.get(key)),
                     f'<span class="bad">{file_link(block)}</span>' if block else "-"])  # fmt: skip
    if not rows:
        mark = report.get("low_watermark")
        return f"<p>low watermark {file_link(mark) if mark else '- (nothing done yet)'}</p>"
    return table(("key", "done", "failed", "waiting", "low watermark", "published", "blocked by"),
                 rows, "")  # fmt: skip


def failures(board: Board) -> str:
    rows = [[file_link(f.file), text(f.finished_at), text(f.worker), text(f.error)]
            for f in board.failures]  # fmt: skip
    more = int(board.report.get("failed", 0)) - len(rows)
    tail = f"<p>and {more} more (ingestd failed DIR)</p>" if more > 0 else ""
    return table(("file", "failed at", "worker", "error"), rows, "no failed file") + tail


def publishing(report: dict[str, Any]) -> str:
    lines = [f"<li>{'key ' + text(k) + ': ' if k else ''}published up to {file_link(n)}</li>"
             for k, n in sorted(report.get("published", {}).items())]  # fmt: skip
    lines += [f'<li class="bad">failing on {text(w)}: {text(e)}</li>'
              for w, e in sorted(report.get("publish_errors", {}).items())]  # fmt: skip
    return f"<ul>{''.join(lines)}</ul>" if lines else '<p class="none">not publishing in order</p>'


def problems(report: dict[str, Any]) -> str:
    lines = [f'<li class="bad">{text(p)}</li>' for p in report.get("problems", [])]
    lines += [f'<li class="bad">changed after done: {file_link(n)}</li>'
              for n in report.get("changed_after_done", {})]  # fmt: skip
    count = report.get("missing_slot_count", 0)
    if count:
        listed = ", ".join(text(s) for s in report.get("missing_slots", [])[:10])
        lines.append(f"<li>missing slots {int(count)}: {listed}</li>")
    return f"<ul>{''.join(lines)}</ul>" if lines else '<p class="none">none</p>'


def timeline(board: Board) -> str:
    if board.timeline is None:
        return f'<p class="none">{text(board.timeline_note)}</p>'
    stamp = int(board.gathered_at) if board.timeline else 0
    return (f'<img class="timeline" src="/timeline.svg?v={stamp}" alt="the timeline: '
            f'{text(board.timeline_note)}"><p>{text(board.timeline_note)}</p>')  # fmt: skip


def board_page(board: Board, label: str, refresh: float, aside: str = "") -> str:
    report = board.report
    main = (
        freshness(board)
        + counts(report)
        + section("In progress", working(report), "in-progress")
        + section("Waiting", waiting(report), "waiting")
        + section("Workers", workers(report), "workers")
        + section("Keys and watermarks", keys(report), "keys")
        + section("Last failures", failures(board), "failures")
        + section("Publishing", publishing(report), "publishing")
        + section("Problems", problems(report), "problems")
        + section("Timeline", timeline(board), "timeline")
    )
    return page(label, label, main, refresh, aside)


def file_page(explained: dict[str, Any], label: str, refresh: float, aside: str = "") -> str:
    """`ingestd explain` as a page: the verdict, then the history oldest first."""
    rows = [[text(item["what"]), text(item["detail"])] for item in explained["history"]]
    main = (
        f'<h1 class="file">{text(explained["file"])}</h1>'
        f'<p class="state {text(explained["state"]).replace(" ", "-")}" id="state">'
        f"<b>{text(explained['state'])}</b>: {text(explained['why'])}</p>"
        + section("History", table(("what", "detail"), rows, "nothing known"), "history")
    )
    return page(explained["file"], label, main, refresh, aside)


def actions_form(file: str | None = None) -> str:
    """The forms of the actions (POST, with the token typed in: no cookie can be borrowed)."""
    token = ('<label>token <input type="password" name="token" autocomplete="off" required>'
             "</label>")  # fmt: skip
    if file is not None:
        hidden = f'<input type="hidden" name="file" value="{text(file)}">'
        forms = (f'<form method="post" action="/actions/retry">{hidden}{token}'
                 '<button>retry this file</button></form>')  # fmt: skip
    else:
        forms = "".join(
            f'<form method="post" action="/actions/{a}">{token}<button>{a}</button></form>'
            for a in ("pause", "resume")
        ) + (f'<form method="post" action="/actions/retry"><label>files <input name="file" '
             f'required></label>{token}<button>retry</button></form>')  # fmt: skip
    return f'<aside id="actions"><h2>Actions</h2>{forms}</aside>'


def message_page(title: str, line: str, label: str, back: str = "/") -> str:
    main = f'<p id="message">{text(line)}</p><p><a href="{text(back)}">back</a></p>'
    return page(title, label, main, 0)
