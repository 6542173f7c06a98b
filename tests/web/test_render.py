"""The console's pure pieces: units, links, the side-by-side diff, intervals, windows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from trimtab.errors import Invalid
from trimtab.web.console import _safe_next
from trimtab.web.render import ms, pct, preview, query, usd, when
from trimtab.web.rollout import interval_bar
from trimtab.web.routes import side_by_side
from trimtab.web.windows import window


def test_numbers_carry_their_units() -> None:
    assert ms(12.34) == "12.3 ms" and ms(250) == "250 ms" and ms(12_500) == "12.5 s"
    assert usd(1234.5) == "$1,234.50" and usd(0) == "$0" and usd(0.000123) == "$0.000123"
    assert pct(0.0123) == "1.23 %" and pct(None) == "\N{EN DASH}"


def test_times_are_time_elements_in_utc() -> None:
    at = datetime(2026, 12, 2, 7, 30, tzinfo=UTC)
    html = str(when(at))
    assert html == '<time datetime="2026-12-02T07:30:00+00:00">2026-12-02 07:30:00 UTC</time>'
    assert str(when(None)) == "\N{EN DASH}"


def test_links_keep_the_filters() -> None:
    assert query({"route": "a b", "model": None}, cursor="xyz") == "?route=a+b&cursor=xyz"
    assert query({}) == "?"


def test_a_large_body_is_cut() -> None:
    assert preview("abc", 2) == ("ab", True) and preview("ab", 2) == ("ab", False)
    assert preview(None) == ("", False)


def test_sign_in_returns_only_to_the_console() -> None:
    assert _safe_next("/ui/requests?route=x") == "/ui/requests?route=x"
    for bad in (None, "", "https://evil.example/ui", "//evil.example", "/api/keys"):
        assert _safe_next(bad) == "/ui"


def test_a_unified_diff_side_by_side() -> None:
    text = "--- v1\n+++ v2\n@@ -1,3 +1,3 @@\n same\n-old one\n-old two\n+new one\n tail\n"
    assert side_by_side(text) == [
        (("same", "same"), ("same", "same")),
        (("removed", "old one"), ("added", "new one")),
        (("removed", "old two"), ("", "")),
        (("same", "tail"), ("same", "tail")),
    ]


def test_an_interval_on_its_axis() -> None:
    bar = interval_bar({"lower": 0.0, "upper": 1.0, "margin": 2.0, "estimate": 0.5})
    assert bar is not None
    assert bar["lower"] < bar["estimate"] < bar["upper"] < bar["margin"]
    open_ended = interval_bar({"lower": float("-inf"), "upper": 1.0, "margin": 2.0})
    assert open_ended is not None and open_ended["lower"] == 0.0
    assert interval_bar({"lower": None, "upper": None}) is None


def test_windows_are_a_fixed_set() -> None:
    assert window(None) == ("1h", timedelta(hours=1), 1)
    assert window("7d")[2] == 60
    with pytest.raises(Invalid, match="window '2h' is not one of"):
        window("2h")
