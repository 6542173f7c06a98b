"""A console page's screenshot into the session's folder (the `shots` fixture), for a
reviewer to look at."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Page


def shot(page: Page, folder: Path, name: str) -> None:
    page.screenshot(path=str(folder / f"{name}.png"))
