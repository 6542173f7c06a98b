"""The `slos:` section: strict keys, every problem at once with the file and key."""

from __future__ import annotations

import pytest

from trimtab.slo.burn import AlertRule, scaled_rules
from trimtab.slo.spec import Selector, Sli, SlosError, load_slos, parse_slos

ISSUE_EXAMPLE = """
routes:
  support-answer: {}
slos:
  support-availability:
    route: support-answer
    sli: {kind: availability}
    objective: 0.999
    window: 30d
  support-latency:
    route: support-answer
    sli: {kind: latency, threshold_ms: 2000}
    objective: 0.95
  support-ttft:
    route: support-answer
    tenant: acme
    sli: {kind: latency, threshold_ms: 800, of: ttft}
    objective: 0.9
    window: 7d
    alerting: {min_events: 50}
  support-timeouts:
    model: gpt-mock
    feature: answer
    sli: {kind: error_rate, class: timeout}
    objective: 0.99
    window: 28d
    alerting:
      windows:
        - {severity: page, long: 2h, short: 10m, factor: 10}
"""


def test_the_issues_shape_parses() -> None:
    slos = {d.name: d for d in load_slos(ISSUE_EXAMPLE, "slos.yaml")}
    a = slos["support-availability"]
    assert a.selector == Selector(route="support-answer")
    assert a.sli == Sli("availability")
    assert (a.objective, a.window, a.window_minutes) == (0.999, "30d", 43200)
    assert a.rules == scaled_rules(43200) and a.min_events is None
    assert slos["support-latency"].sli == Sli("latency", threshold_ms=2000.0, of="total")
    assert slos["support-latency"].window == "30d"  # the default
    t = slos["support-ttft"]
    assert t.selector == Selector(route="support-answer", tenant="acme")
    assert t.sli.of == "ttft" and t.min_events == 50 and t.rules == scaled_rules(7 * 1440)
    e = slos["support-timeouts"]
    assert e.selector == Selector(model="gpt-mock", feature="answer")
    assert e.sli == Sli("error_rate", error_class="timeout")
    assert e.rules == (AlertRule("page", 120, 10, 10.0),)


def test_a_definition_survives_its_stored_form() -> None:
    for d in load_slos(ISSUE_EXAMPLE):
        (again,) = parse_slos({"slos": {d.name: d.to_json()}})
        assert again == d and again.digest == d.digest


def test_every_problem_names_the_file_and_key() -> None:
    text = """
bogus: 1
slos:
  a:
    route: r
    sli: {kind: latency, threshold_ms: 2000, of: ttfx, extra: 1}
    objective: 1.5
    window: 9d
    alerting: {min_events: 0, windows: [{severity: page, long: 5m, short: 1h, factor: 2}]}
  b:
    sli: {kind: quality}
    objective: 0.9
  c:
    route: r
    sli: {kind: error_rate, class: timeout}
    objective: 0
    bad: 1
  d:
    sli: {kind: availability}
    objective: 0.9
  e:
    route: r
    sli: {kind: availability}
    objective: 0.9
    window: 7d
    alerting: {windows: [{severity: page, long: 8d, short: 90s, factor: 2}]}
"""
    with pytest.raises(SlosError) as caught:
        load_slos(text, "f.yaml")
    problems = caught.value.problems
    for expected in (
        "f.yaml: bogus: unknown key",
        "f.yaml: slos.a.sli.of: Input should be 'total' or 'ttft'",
        "f.yaml: slos.a.sli.extra: unknown key",
        "f.yaml: slos.a.objective: Input should be less than 1",
        "f.yaml: slos.a.window: Input should be '7d', '28d' or '30d'",
        "f.yaml: slos.a.alerting.min_events: Input should be greater than or equal to 1",
        "f.yaml: slos.a.alerting.windows[0]: the short window must be shorter than the long one",
        "f.yaml: slos.c.objective: Input should be greater than 0",
        "f.yaml: slos.c.bad: unknown key",
        "f.yaml: slos.d: an SLO selects its traffic: give route, model, tenant or feature",
        "f.yaml: slos.e.alerting.windows[0].short: '90s' is not a whole number of minutes "
        "(5m, 1h, 3d)",
    ):
        assert expected in problems, problems
    assert any(p.startswith("f.yaml: slos.b.sli: Input tag 'quality'") for p in problems)


def test_an_alert_window_longer_than_the_slo_window_is_refused() -> None:
    text = """
slos:
  e:
    route: r
    sli: {kind: availability}
    objective: 0.9
    window: 7d
    alerting: {windows: [{severity: ticket, long: 8d, short: 6h, factor: 1}]}
"""
    with pytest.raises(SlosError, match=r"f.yaml: slos.e: alerting window '8d' is longer"):
        load_slos(text, "f.yaml")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("routes: {}\n", "f.yaml: no 'slos' section"),
        ("slos: {}\n", "f.yaml: slos: no SLOs are defined"),
        ("slos: [1]\n", "f.yaml: slos: Input should be a valid dictionary"),
        ("slos:\n  'bad name': {}\n", "f.yaml: slos.bad name: invalid SLO name"),
        ("slos: {a: [\n", "f.yaml: invalid YAML"),
    ],
)
def test_bad_files(text: str, message: str) -> None:
    with pytest.raises(SlosError, match=message.replace(".", r"\.").replace("[", r"\[")):
        load_slos(text, "f.yaml")


def test_a_guardrail_sli_parses_survives_its_stored_form_and_takes_no_other_key() -> None:
    (d,) = load_slos("slos:\n  g: {route: support, sli: {kind: guardrail}, objective: 0.99}\n")
    assert d.sli == Sli("guardrail") and d.to_json()["sli"] == {"kind": "guardrail"}
    (again,) = parse_slos({"slos": {d.name: d.to_json()}})
    assert again == d and again.digest == d.digest
    # the rollups count the requests any check fired on, not each check's: no `checks:`
    bad = "slos:\n  g: {route: r, sli: {kind: guardrail, checks: [pii]}, objective: 0.9}\n"
    with pytest.raises(SlosError) as caught:
        load_slos(bad, "f.yaml")
    assert "f.yaml: slos.g.sli.checks: unknown key" in caught.value.problems
