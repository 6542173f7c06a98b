"""`trimtab incident ...` against a running gateway: refusals as one error line, an empty
list, a severity change, an edited postmortem recorded from a file, a rule by reference,
the viewer's reads."""

from __future__ import annotations

from pathlib import Path

from tests.cli import support
from tests.support import ADMIN_KEY, OPERATOR_KEY, VIEWER_KEY, Running


def trimtab(running: Running, *args: str, api_key: str = OPERATOR_KEY) -> tuple[int, str]:
    return support.trimtab(running, *args, api_key=api_key, columns=220)


def opened(running: Running) -> str:
    code, out = trimtab(running, "incident", "open", "--type", "cost_spike",
                        "--title", "spend doubled", "-m", "acme's spend doubled")  # fmt: skip
    assert code == 0, out
    return out.split()[0]


def test_refusals_are_one_line(running: Running) -> None:
    code, out = trimtab(running, "incident", "list")
    assert code == 0 and out.strip() == "no incidents"
    code, out = trimtab(running, "incident", "open", "--type", "flood", "-m", "x")
    assert code == 1
    assert out.startswith("error: 400: type: 'flood' is not one of toxic_output,")
    code, out = trimtab(running, "incident", "open", "--type", "other", "-m", "x",
                        "--route", "nope")  # fmt: skip
    assert code == 1 and "no route 'nope'" in out
    incident_id = opened(running)
    code, out = trimtab(running, "incident", "contain", incident_id, "unplug", "-m", "x")
    assert code == 1 and "unknown containment 'unplug'" in out
    code, out = trimtab(running, "incident", "contain", incident_id, "rollback", "-m", "x")
    assert code == 1 and "route: is required: the incident names no route" in out
    code, out = trimtab(running, "incident", "contain", incident_id, "switch-model",
                        "--model", "gpt-mock", "-m", "x", api_key=ADMIN_KEY)  # fmt: skip
    assert code == 1 and "model 'gpt-mock' has no fallbacks" in out
    code, out = trimtab(running, "incident", "note", incident_id, "-m", "x", api_key=VIEWER_KEY)
    assert code == 1 and "only a key with role 'operator' or 'admin'" in out
    code, out = trimtab(running, "incident", "show", "inc_nope")
    assert code == 1 and "no incident 'inc_nope'" in out and "request id: req_" in out


def test_an_edited_postmortem_and_a_rule_by_reference(running: Running, tmp_path: Path) -> None:
    incident_id = opened(running)
    code, out = trimtab(running, "incident", "list", api_key=VIEWER_KEY)
    assert code == 0 and incident_id in out and "spend doubled" in out and "SEV3" in out
    code, out = trimtab(running, "incident", "severity", incident_id, "--sev", "2",
                        "-m", "it doubled again")  # fmt: skip
    assert code == 0 and "SEV2" in out, out
    code, out = trimtab(running, "incident", "severity", incident_id, "--sev", "2", "-m", "x")
    assert code == 1 and f"incident {incident_id} is SEV2 already" in out
    edited = tmp_path / "pm.md"
    edited.write_text("# Postmortem\n\nEdited by the team.\n")
    code, out = trimtab(running, "incident", "postmortem", incident_id, "--from", str(edited))
    assert code == 0 and out == "# Postmortem\n\nEdited by the team.\n"
    code, out = trimtab(running, "incident", "rule", incident_id, "--kind", "limit",
                        "--ref", "budgets.tenant:acme", "-m", "a daily budget")  # fmt: skip
    assert code == 0 and out.strip() == "rule 1: limit budgets.tenant:acme"
    code, out = trimtab(running, "incident", "close", incident_id)
    assert code == 1 and "it needs the incident resolved (it is open" in out
    assert "postmortem" not in out.split("needs", 1)[1]
    assert trimtab(running, "incident", "mitigate", incident_id, "-m", "budget set")[0] == 0
    assert trimtab(running, "incident", "resolve", incident_id)[0] == 0
    code, out = trimtab(running, "incident", "close", incident_id)
    assert code == 0 and "closed" in out
    code, out = trimtab(running, "incident", "show", incident_id, api_key=ADMIN_KEY)
    assert code == 0, out
    assert "rule: limit budgets.tenant:acme: a daily budget" in out
    assert "postmortem" in out and "mitigate" in out  # the timeline's own entries
