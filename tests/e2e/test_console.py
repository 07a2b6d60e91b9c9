"""`ingestd console` and a worker's `--console`, against real fleets: the pages' content on the
file and PostgreSQL ledgers, hostile names escaped, the probes, actions and who took them."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
from pathlib import Path

from conftest import done_names, manifest_records, wait_for

from e2e.console_helpers import SECRET, console, counts, fetch, free_port, ledger_json

__all__ = ["console"]  # the fixture, used by name

# A key may be anything a --key-pattern admits: markup, quotes, an escape character.
PATTERN = (r"(?P<key>.+)_(?P<year>\d{4})_(?P<month>\d\d)_(?P<day>\d\d)_(?P<hour>\d\d)_"
           r"(?P<minute>\d\d)\.txt")  # fmt: skip
HOSTILE_KEY = "<svg onload=alert(1)>\"'\x1b[31m"
HOSTILE_WORKER = "<img src=x onerror=alert(2)>'"


def hostile_fleet(data: Path, spawn) -> tuple[list[str], str]:
    """Three files of a hostile key, one of them failing with a hostile error; done."""
    names = [f"{HOSTILE_KEY}_2018_06_28_00_{m:02d}.txt" for m in (0, 15, 30)]
    for name in names[:2]:
        (data / name).write_text("1\n")
    (data / names[2]).write_text("<script>alert(3)</script>\n")  # not a number: fails
    w = spawn(data, "--seconds-in-min", "0", "--exit-when-idle", "1", "--max-attempts", "1",
              "--key-pattern", PATTERN, name=HOSTILE_WORKER)  # fmt: skip
    assert w.wait(timeout=60) == 0, w.text
    return names, names[2]


def assert_no_markup_from_outside(html: str) -> None:
    for raw in ("<svg onload", "<img src=x", "<script>alert", "\x1b"):
        assert raw not in html, raw


def test_the_board_shows_a_real_fleet_and_escapes_every_name(data: Path, spawn, console) -> None:
    _, failed = hostile_fleet(data, spawn)
    shown = console(data, "--key-pattern", PATTERN)
    page = shown.get("/")
    assert page.status == 200
    assert counts(page.body) == {"done": 2, "failed": 1, "pending": 0, "in-progress": 0}
    assert_no_markup_from_outside(page.body)
    assert "&lt;svg onload=alert(1)&gt;&quot;&#x27;\\x1b[31m" in page.body  # the key, shown
    assert "not a number: &#x27;&lt;script&gt;alert(3)&lt;/script&gt;&#x27;" in page.body
    assert "default-src 'none'" in page.headers["Content-Security-Policy"]
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    # Every file name links to its own page, which says what `ingestd explain` says.
    links = re.findall(r'href="(/files/[^"]+)"', page.body)
    assert links and all(shown.get(link).status == 200 for link in set(links))
    story = shown.get(re.findall(r'href="(/files/[^"]+)"', page.body)[0])
    assert_no_markup_from_outside(story.body)
    assert 'class="state failed"' in story.body and "HOSTILE" not in story.body
    assert shown.get("/timeline.svg").headers["Content-Type"] == "image/svg+xml"
    assert shown.get("/nope").status == 404
    assert shown.post("/", "x=1").status == 405
    metrics = shown.get("/metrics")
    assert metrics.status == 200 and 'ingestd_files_total{outcome="failed"} 1.0' in metrics.body
    assert failed in [r["file"] for r in manifest_records(data) if r["status"] == "failed"]


def test_counts_follow_the_fleet_and_the_probes_follow_its_workers(
    data: Path, spawn, console
) -> None:
    shown = console(data)
    assert counts(shown.get("/").body)["done"] == 0
    assert shown.get("/healthz").status == 503  # no worker yet
    (data / "2018_06_28_00_00.txt").write_text("30\n")
    w = spawn(data, "--seconds-in-min", "0.2", name="slow")
    wait_for(lambda: counts(shown.get("/").body)["in-progress"] == 1, what="in progress shown")
    board = shown.get("/").body
    assert "slow" in board and '<a href="/files/2018_06_28_00_00.txt">' in board
    assert shown.get("/healthz").status == 200
    ready = shown.get("/readyz")
    assert ready.status == 200 and ready.body.strip() == "ready"
    assert shown.get("/healthz?worker=other").status == 503
    wait_for(lambda: done_names(data), timeout=60, what="the file done")
    wait_for(lambda: counts(shown.get("/").body)["done"] == 1, what="done shown")
    assert w.terminate() == 0


def test_actions_refused_without_the_token_and_logged_with_it(
    tmp_path: Path, data: Path, spawn, console
) -> None:
    (data / "2018_06_28_00_00.txt").write_text("oops\n")
    w = spawn(data, "--seconds-in-min", "0", "--exit-when-idle", "1", "--max-attempts", "1")
    assert w.wait(timeout=60) == 0
    tokens = tmp_path / "tokens"
    tokens.write_text(f"alice:{SECRET}\n")
    tokens.chmod(0o600)
    shown = console(data, "--console-actions", "--console-token-file", str(tokens))
    assert "<form" in shown.get("/").body
    refused = [shown.post("/actions/retry", "file=2018_06_28_00_00.txt"),
               shown.post("/actions/retry", "file=2018_06_28_00_00.txt&token=guessed-token-12345"),
               shown.post("/actions/retry", f"file=2018_06_28_00_00.txt&token={SECRET}",
                          Origin="http://evil.example")]  # fmt: skip
    assert [r.status for r in refused] == [403, 403, 403]
    assert [r["status"] for r in manifest_records(data)] == ["failed"]  # nothing changed
    reasons = [e["reason"] for e in shown.proc.events("console_action_refused")]
    assert reasons == ["no valid token", "no valid token", "cross-site"]
    (data / "2018_06_28_00_00.txt").write_text("1\n")  # the provider fixed it
    done = shown.post("/actions/retry", f"file=2018_06_28_00_00.txt&token={SECRET}")
    assert done.status == 200 and "will be processed again" in done.body
    [action] = shown.proc.events("console_action")
    assert (action["who"], action["action"], action["files"]) == (
        "alice", "retry", ["2018_06_28_00_00.txt"],
    )  # fmt: skip
    retry = manifest_records(data)[-1]
    assert retry["status"] == "retry" and retry["worker"].startswith("console:alice@")
    paused = shown.post("/actions/pause", "", Authorization=f"Bearer {SECRET}")
    assert paused.status == 200 and ledger_json("status", str(data))["paused"] is True
    assert shown.post("/actions/resume", f"token={SECRET}").status == 200
    again = spawn(data, "--seconds-in-min", "0", "--exit-when-idle", "1")
    assert again.wait(timeout=60) == 0
    assert done_names(data) == ["2018_06_28_00_00.txt"]


def test_a_console_that_cannot_start_says_why_in_one_line(tmp_path: Path, data: Path) -> None:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "ingestd", "console", str(data), *args],
                              capture_output=True, text=True, timeout=30)  # fmt: skip

    loose = tmp_path / "tokens"
    loose.write_text(f"alice:{SECRET}\n")
    loose.chmod(0o644)
    for args, says in [
        (("--console-actions",), "--console-actions needs --console-token-file"),
        (("--console-actions", "--console-token-file", str(loose)), "chmod 600"),
        (("--listen", "nowhere"), "is not HOST:PORT"),
        (("--refresh", "0"), "must be > 0"),
    ]:
        out = run(*args)
        assert out.returncode == 2, out
        assert says in out.stderr and "Traceback" not in out.stderr
        assert len(out.stderr.strip().splitlines()) == 1, out.stderr
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = run("--listen", f"127.0.0.1:{busy.getsockname()[1]}")
    assert taken.returncode == 2 and "Address already in use" in taken.stderr, taken


def test_a_worker_serves_the_console_on_its_metrics_port(data: Path, spawn) -> None:
    port = free_port()
    (data / "2018_06_28_00_00.txt").write_text("1\n")
    w = spawn(data, "--seconds-in-min", "0", "--metrics-listen", f"127.0.0.1:{port}",
              "--console", "--heartbeat-interval", "0.5")  # fmt: skip
    url = f"http://127.0.0.1:{port}/"
    wait_for(lambda: w.events("metrics_listening"), what="the port open")
    wait_for(lambda: counts(fetch(url).body).get("done") == 1, what="the board")
    assert fetch(url + "healthz").status == 200  # the worker's own probe
    assert "ingestd_files_total" in fetch(url + "metrics").body  # the worker's own registry
    assert fetch(url + "files/2018_06_28_00_00.txt").status == 200
    assert fetch(url + "nope").status == 404
    assert w.events("metrics_listening")[0]["console"] is True
    assert w.terminate() == 0


def test_a_worker_console_needs_the_metrics_port(data: Path, spawn) -> None:
    w = spawn(data, "--console")
    assert w.wait(timeout=30) == 2
    assert "--console serves on the metrics port" in w.text


def test_the_console_on_a_postgresql_ledger(data: Path, spawn, console, pg) -> None:
    (data / "2018_06_28_00_00.txt").write_text("1\n")
    (data / "2018_06_28_00_15.txt").write_text("bad\n")
    w = spawn(data, "--seconds-in-min", "0", "--exit-when-idle", "1", "--max-attempts", "1",
              "--ledger", pg.url, name="pgw")  # fmt: skip
    assert w.wait(timeout=60) == 0, w.text
    tokens = data.parent / "tokens"
    tokens.write_text(f"bob:{SECRET}\n")
    tokens.chmod(0o600)
    shown = console(data, "--ledger", pg.url, "--console-actions", "--console-token-file",
                    str(tokens))  # fmt: skip
    board = shown.get("/").body
    assert counts(board) == {"done": 1, "failed": 1, "pending": 0, "in-progress": 0}
    story = shown.get("/files/2018_06_28_00_15.txt").body
    assert 'class="state failed"' in story and "not a number" in story
    done = shown.get("/files/2018_06_28_00_00.txt").body
    assert 'class="state done"' in done and "done by pgw" in done
    assert shown.post("/actions/retry", f"file=2018_06_28_00_15.txt&token={SECRET}").status == 200
    history = ledger_json("explain", str(data), "2018_06_28_00_15.txt", "--ledger", pg.url)
    assert "requested by console:bob@" in history["history"][-1]["detail"]


def test_the_console_of_a_bucket_fleet_and_a_workers_console_on_it(
    s3_server, spawn, console, pg
) -> None:
    """A bucket source with the PostgreSQL ledger: the console command, and a worker's own
    --console, read the same fleet (the bucket through the AWS_* settings, as operators do)."""
    name = s3_server.bucket()
    client = s3_server.client()
    client.put_object(Bucket=name, Key="day/2018_06_28_00_00.txt", Body=b"1\n")
    client.put_object(Bucket=name, Key="day/2018_06_28_00_15.txt", Body=b"oops\n")
    source = f"s3://{name}/day"
    port = free_port()
    w = spawn(source, "--ledger", pg.url, "--seconds-in-min", "0", "--max-attempts", "1",
              "--metrics-listen", f"127.0.0.1:{port}", "--console", "--heartbeat-interval",
              "0.5", name="bucket-w")  # fmt: skip
    own = f"http://127.0.0.1:{port}/"
    wait_for(lambda: w.events("metrics_listening"), what="the port open")
    wait_for(lambda: counts(fetch(own).body).get("done") == 1, timeout=60, what="the board")
    assert counts(fetch(own).body)["failed"] == 1
    assert 'class="state failed"' in fetch(own + "files/2018_06_28_00_15.txt").body
    shown = console(source, "--ledger", pg.url)
    board = shown.get("/").body
    assert counts(board) == {"done": 1, "failed": 1, "pending": 0, "in-progress": 0}
    assert "bucket-w" in board and "not a number" in board
    story = shown.get("/files/2018_06_28_00_00.txt").body
    assert 'class="state done"' in story and "done by bucket-w" in story
    assert w.terminate() == 0


def test_a_database_outage_is_said_on_the_board_which_comes_back(
    data: Path, spawn, console, pg
) -> None:
    (data / "2018_06_28_00_00.txt").write_text("1\n")
    w = spawn(data, "--ledger", pg.url, "--seconds-in-min", "0", "--exit-when-idle", "1")
    assert w.wait(timeout=60) == 0, w.text
    shown = console(data, "--ledger", pg.url)
    assert counts(shown.get("/").body)["done"] == 1
    pg.cluster.stop()
    try:
        wait_for(lambda: 'id="read-error"' in shown.get("/").body, what="the outage said")
        page = shown.get("/").body
        assert counts(page)["done"] == 1  # the last reading stays on the page
        assert shown.get("/healthz").status == 503
        assert shown.get("/files/2018_06_28_00_00.txt").status == 503
    finally:
        pg.cluster.start()
    wait_for(lambda: 'id="read-error"' not in shown.get("/").body, timeout=60, what="back")
    assert counts(shown.get("/").body)["done"] == 1
    assert len(shown.proc.events("console_read_failed")) == 1  # once per outage
