"""The pure parts of an incident: the severity matrix, the blast radius, the type of an
alert, the first bad minute, measured durations, what closing needs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from trimtab.incidents.model import (
    MATRIX,
    RADII,
    Times,
    close_missing,
    first_bad_minute,
    radius,
    severity,
    type_of,
)

T = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T + timedelta(minutes=minutes)


@pytest.mark.parametrize(
    ("traffic", "tenants", "expected"),
    [
        (0.005, 0.0, "contained"),
        (0.0099, None, "contained"),
        (0.01, None, "limited"),
        (0.05, 0.02, "limited"),
        (0.02, 0.10, "broad"),  # the larger share decides
        (0.49, 0.3, "broad"),
        (0.5, 0.0, "widespread"),
        (0.01, 1.0, "widespread"),
        (None, None, None),
    ],
)
def test_blast_radius_is_the_larger_share(
    traffic: float | None, tenants: float | None, expected: str | None
) -> None:
    assert radius(traffic, tenants) == expected


def test_the_matrix_cell_by_cell() -> None:
    expected = {
        "critical": [2, 1, 1, 1],
        "high": [3, 2, 2, 1],
        "medium": [4, 3, 3, 2],
        "low": [4, 4, 4, 3],
    }
    for impact, row in expected.items():
        assert [severity(impact, r) for r in RADII] == row  # type: ignore[arg-type]
    # more impact or a wider radius is never less severe
    for cells in MATRIX.values():
        assert list(cells) == sorted(cells, reverse=True)
    for column in range(len(RADII)):
        down = [MATRIX[i][column] for i in ("low", "medium", "high", "critical")]
        assert down == sorted(down, reverse=True)


def test_an_unmeasured_radius_is_judged_limited() -> None:
    assert severity("critical", None) == 1
    assert severity("low", None) == 4


def test_an_alerts_type_from_its_labels_else_its_source() -> None:
    assert type_of({"incident_type": "pii_leak"}, "slo_burn") == "pii_leak"
    assert type_of({"incident_type": "not-a-type"}, "breaker") == "vendor_outage"
    assert type_of({}, "budget") == "cost_spike"
    assert type_of({}, "runaway_agent_loop") == "runaway_agent_loop"
    assert type_of({}, "slo_burn") == "other"
    assert type_of({}, None) == "other"


def test_first_bad_minute_is_the_start_of_the_run_before_detection() -> None:
    bad = [at(-120), at(-30), at(0), at(1), at(5), at(14), at(20)]
    # from the detection at 20 back: 14, 5 (9 min apart), 1, 0; -30 is 30 min before 0
    assert first_bad_minute(bad, at(20)) == at(0)
    # with a 5-minute gap, 14 is too far from 20: the run is 20 alone
    assert first_bad_minute(bad, at(20), gap=timedelta(minutes=5)) == at(20)
    assert first_bad_minute(bad, at(19), gap=timedelta(minutes=5)) == at(14)
    # bad minutes after the detection do not start the run
    assert first_bad_minute([at(3), at(4)], at(2)) is None
    # the last bad minute long before the detection: not its cause
    assert first_bad_minute([at(0)], at(30)) is None
    assert first_bad_minute([], at(0)) is None
    assert first_bad_minute([at(0)], at(0)) == at(0)


def test_durations_from_explicit_times() -> None:
    times = Times(
        first_bad=at(0), detected=at(4), acknowledged=at(6), mitigated=at(15), resolved=at(64)
    )
    assert times.durations() == {
        "detect": 240.0,
        "acknowledge": 120.0,
        "mitigate": 660.0,
        "resolve": 3600.0,
        "impact": 3840.0,
    }
    early = Times(first_bad=None, detected=at(4))
    assert early.durations() == {
        "detect": None,
        "acknowledge": None,
        "mitigate": None,
        "resolve": None,
        "impact": None,
    }
    assert Times(None, at(0), resolved=at(10)).durations()["impact"] == 600.0


def test_close_names_what_is_missing() -> None:
    missing = close_missing("mitigated", has_postmortem=False, rules=0)
    assert len(missing) == 3
    assert "resolved" in missing[0] and "mitigated" in missing[0]
    assert "postmortem" in missing[1]
    assert "rule" in missing[2] and "dataset_case" in missing[2]
    assert close_missing("resolved", has_postmortem=True, rules=0) == [missing[2]]
    assert close_missing("resolved", has_postmortem=True, rules=1) == []
