"""One `trimtab serve` with seeded data and one headless Chromium for the console's tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, sync_playwright

from tests.support import start_gateway, stop_server
from tests.web.support import CHROMIUM, TIMEZONE, VIEWPORT, Console, config, screenshot_folder, seed
from trimtab.testing.mock_upstream import MockUpstream


@pytest.fixture(scope="session")
def console(upstream: MockUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    folder = tmp_path_factory.mktemp("console")
    proc, url = start_gateway(config(upstream.url, folder), folder, "console")
    try:
        seed(url)
        yield Console(url, folder)
    finally:
        stop_server(proc)


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (Debian's chromium package; .ci/run installs it)")
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM)
        yield launched
        launched.close()


@pytest.fixture(scope="session")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return screenshot_folder(tmp_path_factory.mktemp("screenshots"))


SignIn = Callable[[str | None], Page]


@pytest.fixture
def sign_in(browser: Browser, console: Console) -> Iterator[SignIn]:
    """A fresh browser context signed in with a key (None: stay on the sign-in page);
    every page it opens must log no console error and throw no script error."""
    errors: list[str] = []
    contexts = []

    def open_as(key: str | None) -> Page:
        context = browser.new_context(
            viewport=VIEWPORT, base_url=console.url, locale="en-US", timezone_id=TIMEZONE
        )
        contexts.append(context)
        page = context.new_page()

        def on_console(msg: ConsoleMessage) -> None:
            # an error page's own status (a 403, a 404 a test asks for) is logged too;
            # any other error, a script's or a resource's the page loads, counts
            document = msg.location.get("url") == page.url
            if msg.type == "error" and not (document and msg.text.startswith("Failed to load")):
                errors.append(f"{page.url}: {msg.text} ({msg.location.get('url')})")

        page.on("console", on_console)
        page.on("pageerror", lambda exc: errors.append(f"{page.url}: {exc}"))
        page.goto("/ui")
        if key is not None:
            page.fill("#key", key)
            page.click("button[type=submit]")
            page.wait_for_url("**/ui")
        return page

    yield open_as
    for context in contexts:
        context.close()
    assert errors == [], "console errors:\n" + "\n".join(errors)
