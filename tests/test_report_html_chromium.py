"""The HTML report in a real browser: Debian's headless Chromium renders it without errors.

Never skipped: without Chromium the test fails and says how to install it.

How "no errors" is checked, and why that way: with the new headless mode, page console output
does not reliably reach ``--enable-logging=stderr``, so the primary check is in the DOM. A copy
of the page gets a tiny monitor script as the first thing in ``<head>`` (its SHA-256 is added
to the page's own Content-Security-Policy, which otherwise stays as shipped). It records
``error`` events (script errors, and resources that fail to load, in the capture phase),
unhandled rejections, ``console.error`` calls and CSP violations (any attempt to load
something that is not inline) into ``data-errors`` on ``<html>``, and on ``load`` stamps each
``<img>`` with its decoded ``naturalWidth``. ``--dump-dom`` prints the DOM after ``load``; the
test asserts that the monitor ran, recorded nothing, and that every plot decoded. stderr is
scanned as well, as a second net, for "Uncaught" and page console errors.
"""

from __future__ import annotations

import base64
import hashlib
import shutil
import subprocess
from collections.abc import Sequence
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread
from report_fixtures import store_virtual_session

from outputs.store import SessionStore
from stridewatch.report_html import CSP, PLOT_IDS
from stridewatch.report_render import render_report

CHROMIUM_TIMEOUT_S = 60.0
"""Bound on one Chromium run (it takes ~2 s here; a hung browser must not hang the suite)."""
WINDOW = (1280, 4200)
"""Viewport (px): wide enough for the tables, tall enough for the whole page."""
CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
    "--hide-scrollbars", "--enable-logging=stderr", "--v=0",
)  # fmt: skip

MONITOR = (
    "(function(){var h=document.documentElement;h.setAttribute('data-errors','');"
    "function rec(m){var o=h.getAttribute('data-errors');"
    "h.setAttribute('data-errors',(o?o+' | ':'')+String(m));}"
    "window.addEventListener('error',function(e){var t=e.target;"
    "rec(e.message||('failed to load '+(t&&(t.src||t.href||t.tagName))));},true);"
    "window.addEventListener('unhandledrejection',function(e){rec('unhandled '+e.reason);});"
    "document.addEventListener('securitypolicyviolation',function(e){"
    "rec('CSP '+e.violatedDirective+' '+e.blockedURI);});"
    "var ce=console.error;console.error=function(){"
    "rec('console.error '+Array.prototype.join.call(arguments,' '));"
    "return ce.apply(console,arguments);};"
    "window.addEventListener('load',function(){var im=document.images;"
    "for(var i=0;i<im.length;i++){im[i].setAttribute('data-natural-width',"
    "String(im[i].naturalWidth));}h.setAttribute('data-monitor','loaded');});})();"
)


def _chromium() -> str:
    path = shutil.which("chromium")
    if path is None:
        pytest.fail("install Debian's chromium package (make test does this as root)")
    return path


def _run(args: Sequence[str], profile: Path) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            [_chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
            capture_output=True, text=True, timeout=CHROMIUM_TIMEOUT_S, check=False,
        )  # fmt: skip
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"chromium did not finish within {CHROMIUM_TIMEOUT_S:.0f} s: {exc}")


def _monitored(page: str) -> str:
    """The page with :data:`MONITOR` first in ``<head>``, allowed by its hash in the CSP."""
    digest = base64.b64encode(hashlib.sha256(MONITOR.encode()).digest()).decode()
    assert page.count(CSP) == 1
    page = page.replace(CSP, f"{CSP}; script-src 'sha256-{digest}'")
    return page.replace("<head>", f"<head><script>{MONITOR}</script>", 1)


class _Dom(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.root: dict[str, str | None] = {}
        self.images: dict[str, dict[str, str | None]] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "html":
            self.root = a
        elif tag == "img" and a.get("id"):
            self.images[str(a["id"])] = a


def _page_errors(stderr: str) -> list[str]:
    return [
        line for line in stderr.splitlines()
        if "Uncaught" in line or ("CONSOLE" in line and "error" in line.lower())
    ]  # fmt: skip


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("html")
    with SessionStore.open(directory / "store.db") as store:
        session_id = store_virtual_session(store, "morning-5k")
        html_text = render_report(store, session_id, "html")
    path = directory / "report.html"
    path.write_text(html_text, encoding="utf-8")
    return path


def test_report_renders_in_chromium_with_every_plot_and_no_errors(
    page: Path, tmp_path: Path
) -> None:
    monitored = tmp_path / "monitored.html"
    monitored.write_text(_monitored(page.read_text(encoding="utf-8")), encoding="utf-8")
    result = _run(["--dump-dom", monitored.as_uri()], tmp_path / "profile-dom")
    assert result.returncode == 0, result.stderr[-2000:]
    dom = _Dom()
    dom.feed(result.stdout)
    assert dom.root.get("data-monitor") == "loaded", "the monitor script did not run to load"
    assert dom.root.get("data-errors") == "", dom.root.get("data-errors")
    assert _page_errors(result.stderr) == []
    assert sorted(dom.images) == sorted(PLOT_IDS)
    for plot_id, attrs in dom.images.items():
        assert (attrs.get("src") or "").startswith("data:image/png;base64,"), plot_id
        assert attrs.get("alt"), plot_id
        assert int(attrs.get("data-natural-width") or 0) > 500, f"{plot_id} did not decode"


def test_report_screenshot_is_not_blank(page: Path, tmp_path: Path) -> None:
    shot = tmp_path / "report.png"
    result = _run(
        [f"--screenshot={shot}", f"--window-size={WINDOW[0]},{WINDOW[1]}", page.as_uri()],
        tmp_path / "profile-shot",
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert _page_errors(result.stderr) == []
    data = shot.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(data) > 20_000
    pixels = np.asarray(imread(shot))
    assert pixels.shape[:2] == (WINDOW[1], WINDOW[0])
    colours = np.unique(pixels[..., :3].reshape(-1, 3), axis=0)
    assert len(colours) > 100  # text, plots and zone colours, not one flat fill
    assert float(pixels[..., :3].std()) > 0.05


def test_the_monitor_catches_an_external_resource_and_a_script_error(
    page: Path, tmp_path: Path
) -> None:
    """Negative control: the error check above is not vacuous."""
    bad = page.read_text(encoding="utf-8").replace(
        "</main>", '<img id="external" src="http://198.51.100.1/x.png" alt="x"></main>', 1
    )
    thrower = "throw new Error('boom from the page');"
    digest = base64.b64encode(hashlib.sha256(thrower.encode()).digest()).decode()
    bad = _monitored(bad).replace("'; script-src '", f"'; script-src 'sha256-{digest}' '", 1)
    bad = bad.replace("</body>", f"<script>{thrower}</script></body>", 1)
    path = tmp_path / "bad.html"
    path.write_text(bad, encoding="utf-8")
    result = _run(["--dump-dom", path.as_uri()], tmp_path / "profile-bad")
    dom = _Dom()
    dom.feed(result.stdout)
    errors = dom.root.get("data-errors") or ""
    assert "CSP img-src http://198.51.100.1/x.png" in errors
    assert "boom from the page" in errors
