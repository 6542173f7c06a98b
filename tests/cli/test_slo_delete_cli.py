"""`trimtab slo delete` and `trimtab apply --prune [--dry-run]` against a running gateway."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from tests.cli import support
from tests.cli.support import SLOS, write
from tests.support import OPERATOR_KEY, ROUTES, VIEWER_KEY, Running
from trimtab.store.tables import routes, slos

ONE = SLOS[: SLOS.index("  s-latency:")]


def trimtab(running: Running, *args: str, api_key: str = OPERATOR_KEY) -> tuple[int, str]:
    return support.trimtab(running, *args, api_key=api_key, columns=250)


def stored(running: Running) -> list[tuple[str, str]]:
    with running.engine.connect() as conn:
        rows = conn.execute(select(slos.c.scope, slos.c.name).order_by(slos.c.name))
        return [(s, n) for s, n in rows]


def test_slo_delete(running: Running, tmp_path: Path) -> None:
    code, out = trimtab(
        running, "apply", "-f", write(tmp_path, ROUTES + SLOS, "a.yaml"), "-m", "go"
    )
    assert code == 0, out
    code, out = trimtab(running, "slo", "delete", "s-latency")
    assert code == 0, out
    assert out.startswith("s-latency (SLO, tenant acme): deleted (")
    assert stored(running) == [("acme", "s-availability")]
    code, out = trimtab(running, "slo", "delete", "s-latency")
    assert code == 1
    assert "error: 404: no SLO named 's-latency' in tenant 'acme' (request id: req_" in out
    code, out = trimtab(running, "slo", "delete", "s-availability", api_key=VIEWER_KEY)
    assert code == 1 and "may delete SLOs" in out
    assert stored(running) == [("acme", "s-availability")]


def test_apply_prune_and_its_dry_run(running: Running, tmp_path: Path) -> None:
    both = write(tmp_path, ROUTES + SLOS, "both.yaml")
    one = write(tmp_path, ONE, "one.yaml")
    assert trimtab(running, "apply", "-f", both, "-m", "go")[0] == 0

    code, out = trimtab(running, "apply", "-f", one, "-m", "one objective", "--prune", "--dry-run")
    assert code == 0, out
    assert out.splitlines() == [
        "s-availability (SLO): unchanged",
        next(line for line in out.splitlines() if line.startswith("s-latency")),
        "dry run: nothing was changed",
    ]
    assert "s-latency (SLO, tenant acme): would be deleted (dry run) (" in out
    assert len(stored(running)) == 2

    code, out = trimtab(running, "apply", "-f", one, "-m", "one objective")  # no --prune
    assert code == 0 and "s-latency" not in out and len(stored(running)) == 2

    code, out = trimtab(running, "apply", "-f", one, "-m", "one objective", "--prune")
    assert code == 0, out
    assert "s-availability (SLO): unchanged" in out
    assert "s-latency (SLO, tenant acme): deleted (" in out
    assert stored(running) == [("acme", "s-availability")]


def test_prune_needs_an_slos_section(running: Running, tmp_path: Path) -> None:
    assert trimtab(running, "apply", "-f", write(tmp_path, SLOS, "s.yaml"), "-m", "x")[0] == 1
    routes = write(tmp_path, ROUTES, "routes.yaml")
    assert trimtab(running, "apply", "-f", routes, "-m", "routes")[0] == 0
    assert trimtab(running, "apply", "-f", write(tmp_path, SLOS, "s.yaml"), "-m", "x")[0] == 0
    code, out = trimtab(running, "apply", "-f", routes, "-m", "again", "--prune")
    assert code == 0, out
    assert "--prune: no file has an slos: section; no SLO is deleted" in out
    assert "support-answer: unchanged" in out
    assert len(stored(running)) == 2  # a routes file says nothing of SLOs
    code, out = trimtab(running, "apply", "-f", routes, "-m", "again", "--dry-run")
    assert code == 1 and "--dry-run goes with --prune" in out


def test_a_dry_run_takes_the_routes_the_same_file_creates_as_known(
    running: Running, tmp_path: Path
) -> None:
    new_route = ROUTES.replace("support-answer:", "refunds-answer:", 1)
    new_slo = SLOS.replace("s-availability:", "r-availability:", 1).replace(
        "route: support-answer", "route: refunds-answer", 1
    )
    assert (
        trimtab(running, "apply", "-f", write(tmp_path, ROUTES + SLOS, "a.yaml"), "-m", "go")[0]
        == 0
    )
    both = write(tmp_path, new_route + new_slo, "both.yaml")
    code, out = trimtab(running, "apply", "-f", both, "-m", "refunds", "--prune", "--dry-run")
    assert code == 0, out
    assert "r-availability (SLO): would be created" in out
    assert "dry run: nothing was changed" in out
    assert len(stored(running)) == 2  # nothing was applied, and no route was created
    with running.engine.connect() as conn:
        assert "refunds-answer" not in {r.name for r in conn.execute(select(routes.c.name))}
    # a route neither stored nor in the file is still refused, naming its key
    alone = write(tmp_path, new_slo, "alone.yaml")
    code, out = trimtab(running, "apply", "-f", alone, "-m", "x", "--prune", "--dry-run")
    assert code == 1 and "slos.r-availability.route: unknown route 'refunds-answer'" in out
