"""`trimtab requests | request | summary` against a running gateway."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from tests.cli.support import traffic, trimtab
from tests.support import Running
from trimtab.cli.requests import since_time


def test_requests_lists_newest_first_with_filters_across_pages(running: Running) -> None:
    ids = traffic(running, ok=4, failed=2)
    code, out = trimtab(running, "requests", "--limit", "3")
    assert code == 0, out
    shown = [line.split()[2] for line in out.splitlines()[1:] if line.strip()]
    assert shown == ids[::-1][:3]
    code, out = trimtab(running, "requests", "--status", "error", "--since", "1h")
    assert code == 0, out
    rows = [line for line in out.splitlines()[1:] if line.strip()]
    assert [r.split()[2] for r in rows] == ids[::-1][:2]
    assert all(" 404 " in r for r in rows), out
    # more rows than one page of the server (the CLI asks for pages of at most --limit)
    code, out = trimtab(running, "requests", "--feature", "support", "--limit", "100")
    assert code == 0 and len([ln for ln in out.splitlines()[1:] if ln.strip()]) == 6
    code, out = trimtab(running, "requests", "--text", "Q1")  # in one body, in any case
    assert code == 0 and [ln.split()[2] for ln in out.splitlines()[1:] if ln.strip()] == [ids[1]]
    code, out = trimtab(running, "requests", "--route", "nope")
    assert code == 0 and "no requests match" in out
    code, out = trimtab(running, "request", ids[0])
    assert code == 0, out
    record = json.loads(out)
    assert record["id"] == ids[0] and record["request"]["messages"][0]["content"] == "q0"
    code, out = trimtab(running, "requests", "--since", "yesterday")
    assert code == 1 and "--since yesterday: give 15m, 1h, 7d" in out


def test_since_takes_durations_iso_times_and_unix_seconds() -> None:
    now = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    assert since_time("15m", now) == "2026-12-01T11:45:00+00:00"
    assert since_time("2d", now) == "2026-11-29T12:00:00+00:00"
    assert since_time("1764590400", now) == "1764590400"
    assert since_time(None, now) is None


def test_summary_groups_by_model_and_feature(running: Running) -> None:
    traffic(running, ok=3, failed=1)
    code, out = trimtab(running, "summary", "--window", "1h", "--group-by", "model")
    assert code == 0, out
    lines = out.splitlines()
    assert lines[0] == "last 1h, by model"
    assert lines[1].split()[:4] == ["model", "requests", "errors", "error"]
    rows = {ln.split()[0]: ln.split()[1:4] for ln in lines[2:] if ln.strip()}
    assert rows["sim-1"] == ["3", "0", "0.0"]
    assert rows["no-such-model"] == ["1", "1", "100.0"]
    assert rows["total"] == ["4", "1", "25.0"]
    code, out = trimtab(running, "summary", "--group-by", "feature")
    groups = {ln.split()[0]: ln.split()[1] for ln in out.splitlines()[2:] if ln.strip()}
    assert groups == {"support": "4"}  # one group: no total row
    code, out = trimtab(running, "summary", "--group-by", "colour")
    assert code == 1 and "400: group_by: 'colour' is not one of" in out
