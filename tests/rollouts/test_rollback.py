"""A rollback only goes back: forward is a rollout, through the gate (issue 8, item 1)."""

from __future__ import annotations

from typing import Any

from typer.testing import CliRunner

from tests.rollouts.support import api, apply, call, routes_yaml
from tests.support import ADMIN_KEY, OPERATOR_KEY, Running
from trimtab.cli import cli


def timeline(running: Running) -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = api(running, "GET", "/api/routes/faq/timeline").json()["data"]
    return data


def test_rollback_to_an_unreviewed_version_is_refused(running: Running) -> None:
    apply(running, routes_yaml("sim-1", tier=2))
    apply(running, routes_yaml("sim-1", tier=2, greeting="Hi"))
    apply(running, routes_yaml("sim-1", tier=2, greeting="Hey"))
    refused = api(running, "POST", "/api/routes/faq/rollouts", to="v3", reason="go")
    assert refused.status_code == 409 and "gate_refused" in refused.text
    # the same author, the same unreviewed v3, through the back door
    back_door = api(running, "POST", "/api/routes/faq/rollback", to="v3", reason="sneak")
    assert back_door.status_code == 409, back_door.text
    error = back_door.json()["error"]
    assert error["code"] == "not_a_rollback" and error["param"] == "to"
    assert "v3 has never been its stable version" in error["message"]
    assert "has been stable before (v1)" in error["message"]
    assert "trimtab rollout start faq --to v3" in error["message"]
    route = api(running, "GET", "/api/routes/faq").json()
    assert route["stable_version"] == 1
    assert call(running, "u1") == "v1"
    assert "rollback" not in [e["kind"] for e in timeline(running)]


def test_an_earlier_stable_version_is_a_rollback(running: Running) -> None:
    apply(running, routes_yaml("sim-1"))
    apply(running, routes_yaml("sim-1", greeting="Hi"))
    apply(running, routes_yaml("sim-1", greeting="Hey"))
    for to in ("v2", "v3"):
        started = api(running, "POST", "/api/routes/faq/rollouts", to=to, plan="fast", reason="go")
        assert started.status_code == 201, started.text
        done = api(running, "POST", "/api/routes/faq/rollout/promote", reason="good")
        assert done.json()["status"] == "promoted"
    # v1 and v2 have both been stable: either is a rollback
    first = api(running, "POST", "/api/routes/faq/rollback", to="v1", reason="far back")
    assert first.status_code == 200 and first.json()["stable_version"] == 1
    assert call(running, "u1") == "v1"
    # and v3, stable before the rollback, is one too (the pinned previous one)
    again = api(running, "POST", "/api/routes/faq/rollback", reason="undo the undo")
    assert again.status_code == 200 and again.json()["stable_version"] == 3
    second = api(running, "POST", "/api/routes/faq/rollback", to="v2", reason="middle")
    assert second.json() == {"route": "faq", "stable_version": 2, "override_gate": False}


def test_a_version_rolled_back_by_the_controller_never_counts_as_stable(running: Running) -> None:
    apply(running, routes_yaml("sim-1"))
    apply(running, routes_yaml("sim-1", greeting="Hi"))
    api(running, "POST", "/api/routes/faq/rollouts", to="v2", plan="fast", reason="go")
    api(running, "POST", "/api/routes/faq/rollout/abort", reason="no")
    api(running, "POST", "/api/routes/faq/rollouts", to="v2", plan="fast", reason="again")
    ended = api(running, "POST", "/api/routes/faq/rollback", reason="stop it")
    assert ended.status_code == 200 and ended.json()["stable_version"] == 1
    forward = api(running, "POST", "/api/routes/faq/rollback", to="v2", reason="forward")
    assert forward.status_code == 409 and "(v1)" in forward.text


def test_the_emergency_override_is_admin_only_audited_and_on_the_timeline(
    running: Running,
) -> None:
    apply(running, routes_yaml("sim-1", tier=2))
    apply(running, routes_yaml("sim-1", tier=2, greeting="Hi"))
    by_operator = api(
        running, "POST", "/api/routes/faq/rollback", to="v2", reason="hotfix", override_gate=True
    )
    assert by_operator.status_code == 403 and "role 'admin'" in by_operator.text
    not_bool = api(
        running, "POST", "/api/routes/faq/rollback", key=ADMIN_KEY, to="v2", reason="hotfix",
        override_gate="yes",
    )  # fmt: skip
    assert not_bool.status_code == 400
    done = api(
        running, "POST", "/api/routes/faq/rollback", key=ADMIN_KEY, to="v2",
        reason="hotfix for the outage", override_gate=True,
    )  # fmt: skip
    assert done.status_code == 200, done.text
    assert done.json() == {"route": "faq", "stable_version": 2, "override_gate": True}
    assert call(running, "u1") == "v2"
    events = timeline(running)
    override = [e for e in events if e["kind"] == "gate_override"]
    assert len(override) == 1 and override[0]["version"] == 2
    assert override[0]["actor"] == "ops@acme" and override[0]["reason"] == "hotfix for the outage"
    assert "a passing eval attestation" in override[0]["detail"]["missing"]
    rollback = [e for e in events if e["kind"] == "rollback"][-1]
    assert rollback["detail"]["override_gate"] is True
    audit = api(running, "GET", "/api/audit?action=route.rollback", key=ADMIN_KEY).json()["data"]
    assert audit[0]["detail"]["override_gate"] is True and audit[0]["actor"] == "ops@acme"


def test_rollback_from_the_command_line(running: Running) -> None:
    apply(running, routes_yaml("sim-1", tier=2))
    apply(running, routes_yaml("sim-1", tier=2, greeting="Hi"))
    runner = CliRunner()
    env = {"TRIMTAB_URL": running.url, "TRIMTAB_API_KEY": OPERATOR_KEY}
    refused = runner.invoke(cli, ["rollback", "faq", "--to", "v2", "-r", "x"], env=env)
    assert refused.exit_code == 1 and "never been its stable version" in refused.output
    env["TRIMTAB_API_KEY"] = ADMIN_KEY
    forced = runner.invoke(
        cli, ["rollback", "faq", "--to", "v2", "--override-gate", "-r", "outage"], env=env
    )
    assert forced.exit_code == 0, forced.output
    assert "stable is now v2 (was v1) (release gate overridden)" in forced.output
