"""The console in a real browser (Debian's Chromium, headless, driven by Playwright): the page
loads under its Content-Security-Policy without an error, and its counts change as files
finish without the page being reloaded; a screenshot is kept in build/test-artifacts/."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT, done_names, wait_for

from e2e.console_helpers import console

__all__ = ["console"]

ARTIFACTS = ROOT / "build" / "test-artifacts"
# As root in a sandbox with no network: no sandbox of its own, no GPU, no calls home.
FLAGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


@pytest.fixture
def browser() -> Iterator[Any]:
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.fail("these tests need a real browser: apt-get install chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium, args=FLAGS)
        yield launched
        launched.close()


def test_the_counts_change_in_place_as_files_finish(data: Path, spawn, console, browser) -> None:
    for minute in (0, 15, 30, 45):
        (data / f"2018_06_28_00_{minute:02d}.txt").write_text("20\n")
    shown = console(data, "--refresh", "0.5")
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.goto(shown.url)
    assert page.text_content("#count-done") == "0"
    assert page.text_content("#count-pending") == "4"
    page.evaluate("window.loadedOnce = true")  # gone if the page were reloaded
    worker = spawn(data, "--seconds-in-min", "0.05", "--concurrency", "2", name="w-a")
    # Polled from here: a predicate evaluated in the page would break its own policy.
    wait_for(lambda: page.text_content("#count-in-progress") != "0", what="work shown")
    wait_for(lambda: page.text_content("#count-done") == "4", timeout=60, what="done shown")
    assert page.evaluate("window.loadedOnce") is True  # refreshed in place, never reloaded
    assert "w-a" in page.text_content("#workers")
    wait_for(lambda: len(done_names(data)) == 4, what="all done")
    page.click("#keys a[href='/files/2018_06_28_00_45.txt']")  # the low watermark
    page.wait_for_selector("#state")
    assert page.text_content("#state").startswith("done")
    page.go_back()
    page.wait_for_selector("#timeline img")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "console.png"), full_page=True)
    assert problems == []  # no script error, no policy violation
    assert worker.terminate() == 0


def test_the_page_works_without_javascript(data: Path, spawn, console, browser) -> None:
    (data / "2018_06_28_00_00.txt").write_text("1\n")
    worker = spawn(data, "--seconds-in-min", "0", "--exit-when-idle", "1")
    assert worker.wait(timeout=60) == 0
    shown = console(data)
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    page.goto(shown.url)
    assert page.text_content("#count-done") == "1"
    assert page.locator("noscript").count() == 1  # the page refreshes itself instead
    context.close()
