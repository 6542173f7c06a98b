"""`trimtab alerts ...` against a running gateway: list, show, ack, silence, silences,
unsilence."""

from __future__ import annotations

from tests.alerts.support import signal
from tests.cli import support
from tests.support import OPERATOR_KEY, VIEWER_KEY, Running
from trimtab.alerts.runtime import AlertRuntime


def trimtab(running: Running, *args: str, api_key: str = OPERATOR_KEY) -> tuple[int, str]:
    return support.trimtab(running, *args, api_key=api_key, columns=250)


def runtime(running: Running) -> AlertRuntime:
    alerts: AlertRuntime = running.server_app.state.alerts
    return alerts


def test_list_show_and_ack(running: Running) -> None:
    service = runtime(running).service
    (page,) = service.observe([signal(details={"burn_1h": 15.2})])
    service.observe([signal("t", severity="ticket", summary="budget acme crossed 80%")])
    code, out = trimtab(running, "alerts", "list", "--severity", "page", api_key=VIEWER_KEY)
    assert code == 0, out
    lines = out.strip().splitlines()
    assert len(lines) == 2 and lines[1].split()[:3] == [str(page.alert.id), "page", "firing"]
    assert "route=support, tenant=acme" in lines[1]
    code, out = trimtab(running, "alerts", "list", "--state", "open")
    assert code == 0 and "budget acme crossed 80%" in out
    code, out = trimtab(running, "alerts", "list", "--state", "loud")
    assert code == 1 and "--state loud: expected one of open" in out

    code, out = trimtab(running, "alerts", "show", str(page.alert.id))
    assert code == 0, out
    assert f"alert {page.alert.id} page firing" in out
    assert "burn_1h: 15.2" in out and "sent nowhere" in out  # no sinks configured

    code, out = trimtab(running, "alerts", "ack", str(page.alert.id), "-m", "rolling back")
    assert code == 0, out
    assert out.strip() == f"alert {page.alert.id}: acknowledged by ml@acme"
    code, out = trimtab(running, "alerts", "ack", str(page.alert.id), "-m", "x", api_key=VIEWER_KEY)
    assert code == 1 and "operator" in out
    code, out = trimtab(running, "alerts", "show", "424242")
    assert code == 1 and "no alert 424242" in out


def test_silence_list_and_unsilence(running: Running) -> None:
    code, out = trimtab(
        running, "alerts", "silence", "--match", "route=support", "--for", "2h", "-m", "deploy"
    )
    assert code == 0, out
    assert out.startswith("silence 1: route=support, tenant=acme until ")
    (hushed,) = runtime(running).service.observe([signal()])
    assert hushed.alert.silenced
    code, out = trimtab(running, "alerts", "list", api_key=VIEWER_KEY)
    assert "firing (silenced)" in out
    code, out = trimtab(running, "alerts", "silences")
    assert code == 0 and "route=support, tenant=acme" in out and "deploy" in out
    code, out = trimtab(running, "alerts", "unsilence", "1")
    assert code == 0 and out.startswith("silence 1: ended at ")
    code, out = trimtab(running, "alerts", "silences")
    assert out.strip() == "no silences"
    code, out = trimtab(running, "alerts", "silences", "--all")
    assert "deploy" in out
    code, out = trimtab(running, "alerts", "silence", "--match", "x", "--for", "2h", "-m", "m")
    assert code == 1 and "label=value" in out
    code, out = trimtab(running, "alerts", "silence", "--match", "a=b", "--for", "soon", "-m", "m")
    assert code == 1 and "--for soon" in out
