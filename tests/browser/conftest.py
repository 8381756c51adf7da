"""Browser fixtures: the app over real HTTP, Debian's chromium driven by Playwright, a logged-in page."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect, sync_playwright

from tests.conftest import PASSWORD

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture
def browser():
    """Launch Debian's chromium (never a downloaded browser); fail the test if a page broke the CSP."""
    with sync_playwright() as pw:
        instance = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        # What the browser refused under GridLoop's Content Security Policy (an inline script or style, say).
        instance.csp_refusals = []
        yield instance
        instance.close()
        assert instance.csp_refusals == []


def login_as(browser, base: str, username: str) -> Page:
    """Open a fresh browser context and log in."""
    page = browser.new_context(viewport={"width": 420, "height": 900}).new_page()
    page.on("console", lambda message: "Content Security Policy" in message.text
            and browser.csp_refusals.append(f"{page.url}: {message.text}"))
    page.goto(f"{base}/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    expect(page.locator(".who")).to_be_visible()
    return page


def screenshots() -> Path:
    """Return a folder for screenshots a person can look at after the run."""
    folder = Path(__file__).resolve().parents[2] / "instance" / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder
