"""`ibw dev` started by the test on ephemeral ports with a small universe and a temporary home,
stopped by its pid; a headless Debian chromium driven by Playwright (never a browser download);
screenshots kept under test-artifacts/ui/ (gitignored)."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.kit.processes import IBW, ROOT, OutputWatcher, free_port, wait_for_http
from tests.ui.dagster_api import DagsterAPI

UNIVERSE = Path(__file__).with_name("universe.yml")
ARTIFACTS = ROOT / "test-artifacts" / "ui"
CHROMIUM = Path("/usr/bin/chromium")  # Debian's; .ci/run installs it
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
STARTUP = 240.0  # seconds `ibw dev` may take to serve the UI on a loaded machine


@dataclass
class Dev:
    url: str
    api: DagsterAPI
    output: OutputWatcher
    process: subprocess.Popen


@pytest.fixture(scope="module")
def dev(tmp_path_factory) -> Iterator[Dev]:
    home = tmp_path_factory.mktemp("ui") / "ibw"
    ui_port, gateway_port = free_port(), free_port()
    command = [*IBW, "dev", "--home", str(home), "--port", str(ui_port)]
    command += ["--gateway-port", str(gateway_port)]
    env = {**os.environ, "IBW_UNIVERSE": str(UNIVERSE), "COLUMNS": "200"}
    with subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as proc:
        output = OutputWatcher(proc)
        url = f"http://127.0.0.1:{ui_port}"
        try:
            wait_for_http(f"{url}/server_info", timeout=STARTUP)
            yield Dev(url, DagsterAPI(url), output, proc)
        finally:
            proc.send_signal(signal.SIGINT)  # by its pid; `ibw dev` stops its process group
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=30)
            output.finish()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    playwright_api = pytest.importorskip("playwright.sync_api")
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install chromium).")
    profile = tmp_path_factory.mktemp("chromium-profile")  # a new, empty user-data-dir
    with playwright_api.sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            profile,
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1600, "height": 1000},
        )
        context.set_default_timeout(60_000)
        yield context
        context.close()


@pytest.fixture
def page(browser):
    page = browser.new_page()
    # Dagster's first visit shows a community sign-up dialog over whatever page is open.
    page.add_locator_handler(
        page.get_by_text("Join the Dagster community"),
        lambda: page.get_by_role("button", name="Skip").click(),
    )
    yield page
    page.close()


@pytest.fixture
def screenshot(page):
    """Save the page as test-artifacts/ui/NAME.png (a test artefact, never committed)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)

    def take(name: str) -> Path:
        path = ARTIFACTS / f"{name}.png"
        page.screenshot(path=path, full_page=True)
        return path

    return take
