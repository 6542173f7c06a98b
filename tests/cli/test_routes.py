"""`trimtab apply | routes | versions | diff | timeline` against a running gateway."""

from __future__ import annotations

from pathlib import Path

from tests.cli import support
from tests.cli.support import runner
from tests.support import (
    ADMIN_KEY,
    GLOBEX_OPERATOR_KEY,
    OPERATOR_KEY,
    ROUTES,
    V2,
    VIEWER_KEY,
    GatewayFactory,
    Running,
)
from trimtab.cli import cli
from trimtab.testing.servers import free_port


def trimtab(running: Running, *args: str, api_key: str = OPERATOR_KEY) -> tuple[int, str]:
    return support.trimtab(running, *args, api_key=api_key)


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "routes.yaml"
    path.write_text(text)
    return str(path)


def test_apply_versions_diff_timeline(running: Running, tmp_path: Path) -> None:
    file = write(tmp_path, ROUTES)
    code, out = trimtab(running, "apply", "-f", file, "-m", "launch")
    assert code == 0, out
    assert out.startswith("support-answer: created v1 (new route; stable v1; ")
    code, out = trimtab(running, "apply", "-f", file, "-m", "again")
    assert code == 0, out
    assert out.strip() == "support-answer: unchanged at v1 (stable v1)"
    write(tmp_path, V2)
    code, out = trimtab(running, "apply", "--file", file, "--message", "friendlier tone")
    assert code == 0, out
    assert out.startswith("support-answer: created v2 (parent v1; stable v1; ")

    code, out = trimtab(running, "versions", "support-answer", api_key=VIEWER_KEY)
    assert code == 0, out
    lines = out.splitlines()
    v2 = next(i for i, ln in enumerate(lines) if ln.startswith("v2"))
    v1 = next(i for i, ln in enumerate(lines) if ln.startswith("v1"))
    assert v2 < v1  # newest first
    assert "friendlier tone" in lines[v2] and "ml@acme" in lines[v2]
    assert "stable" in lines[v1] and "stable" not in lines[v2]

    code, out = trimtab(running, "diff", "support-answer", "v1", "v2", api_key=VIEWER_KEY)
    assert code == 0, out
    assert out.splitlines()[:3] == [
        "support-answer: v1 -> v2",
        "params:",
        "  ~ temperature: 0.2 -> 0.3",
    ]
    assert "-You are Acme's support assistant. Policy: {{policy}}" in out
    assert "+You are Acme's friendly support assistant. Policy: {{policy}}" in out
    assert trimtab(running, "diff", "support-answer", api_key=VIEWER_KEY)[1] == out

    code, out = trimtab(running, "timeline", "support-answer", api_key=VIEWER_KEY)
    assert code == 0, out
    rows = [ln for ln in out.splitlines() if " apply " in ln]
    assert len(rows) == 2
    assert "v1" in rows[0] and "ml@acme" in rows[0] and "launch" in rows[0]
    assert "v2" in rows[1] and "friendlier tone" in rows[1]

    code, out = trimtab(running, "routes", api_key=VIEWER_KEY)
    assert code == 0, out
    line = next(ln for ln in out.splitlines() if ln.startswith("support-answer"))
    assert line.split()[:3] == ["support-answer", "v1", "v2"]


def test_server_errors_are_printed_and_exit_1(running: Running, tmp_path: Path) -> None:
    file = write(tmp_path, ROUTES.replace("temperature", "temprature"))
    code, out = trimtab(running, "apply", "-f", file, "-m", "typo")
    assert code == 1
    assert f"400: {file}: routes.support-answer.version.params.temprature: unknown key" in out
    code, out = trimtab(
        running, "apply", "-f", write(tmp_path, ROUTES), "-m", "x", api_key=VIEWER_KEY
    )
    assert code == 1
    assert "403: only a key with role 'operator' or 'admin' may apply routes" in out
    code, out = trimtab(running, "versions", "nope", api_key=ADMIN_KEY)
    assert code == 1 and "404: no route named 'nope'" in out
    trimtab(running, "apply", "-f", write(tmp_path, ROUTES), "-m", "launch")
    code, out = trimtab(running, "diff", "support-answer", "v1", "v7")
    assert code == 1 and "404: route 'support-answer' has no version v7 (latest: v1)" in out
    code, out = trimtab(running, "timeline", "support-answer", api_key="tt-wrong-key-123")
    assert code == 1 and "401: invalid API key" in out


def test_local_problems(running: Running, tmp_path: Path) -> None:
    code, out = trimtab(running, "apply", "-f", str(tmp_path / "missing.yaml"), "-m", "x")
    assert code == 1 and "missing.yaml: cannot read: No such file or directory" in out
    url = f"http://127.0.0.1:{free_port()}"
    result = runner.invoke(cli, ["versions", "r", "--url", url, "--api-key", ADMIN_KEY])
    assert result.exit_code == 1
    assert f"cannot reach trimtab at {url}" in result.output


def test_with_keys_off_the_author_is_named_anonymous(
    gateway: GatewayFactory, sqlite_url: str, tmp_path: Path
) -> None:
    """Keys off: nobody is known, and the tables say so instead of leaving a blank."""
    running = gateway(store=sqlite_url)
    env = {"TRIMTAB_URL": running.url, "COLUMNS": "200"}
    applied = runner.invoke(cli, ["apply", "-f", write(tmp_path, ROUTES), "-m", "go"], env=env)
    assert applied.exit_code == 0, applied.output
    versions = runner.invoke(cli, ["versions", "support-answer"], env=env)
    v1 = next(ln for ln in versions.output.splitlines() if ln.startswith("v1"))
    assert "anonymous (keys off)" in v1
    timeline = runner.invoke(cli, ["timeline", "support-answer"], env=env)
    row = next(ln for ln in timeline.output.splitlines() if " apply " in ln)
    assert "anonymous (keys off)" in row


def test_diff_of_a_first_version_says_what_to_do(running: Running, tmp_path: Path) -> None:
    file = tmp_path / "routes.yaml"
    file.write_text(ROUTES)
    assert trimtab(running, "apply", "-f", str(file), "-m", "launch", api_key=OPERATOR_KEY)[0] == 0
    code, out = trimtab(running, "diff", "support-answer")
    assert code == 1
    assert "give from=" not in out
    assert (
        "the newest version of 'support-answer' is its first version: there is nothing "
        "before it to compare with; `trimtab diff support-answer FROM TO` compares two versions"
    ) in " ".join(out.split())


def test_versions_diff_and_timeline_take_a_tenant(running: Running, tmp_path: Path) -> None:
    """Two tenants' routes of one name: the admin (of acme) reads acme's by default and
    globex's with --tenant globex, as the rollout commands do."""
    assert trimtab(running, "apply", "-f", write(tmp_path, ROUTES), "-m", "acme launch")[0] == 0
    for text, message in ((ROUTES, "globex launch"), (V2, "globex friendlier")):
        code, out = trimtab(
            running, "apply", "-f", write(tmp_path, text), "-m", message,
            api_key=GLOBEX_OPERATOR_KEY,
        )  # fmt: skip
        assert code == 0, out

    code, out = trimtab(running, "versions", "support-answer", api_key=ADMIN_KEY)
    assert code == 0, out
    assert [ln.split()[0] for ln in out.splitlines()[1:] if ln.strip()] == ["v1"]
    assert "acme launch" in out and "globex" not in out
    code, out = trimtab(
        running, "versions", "support-answer", "--tenant", "globex", api_key=ADMIN_KEY
    )
    assert code == 0, out
    assert [ln.split()[0] for ln in out.splitlines()[1:] if ln.strip()] == ["v2", "v1"]
    assert "globex friendlier" in out and "ml@globex" in out and "acme launch" not in out

    code, out = trimtab(running, "diff", "support-answer", "--tenant", "globex", api_key=ADMIN_KEY)
    assert code == 0, out
    assert out.splitlines()[0] == "support-answer: v1 -> v2"
    code, out = trimtab(running, "diff", "support-answer", api_key=ADMIN_KEY)
    assert code == 1 and "is its first version" in out  # acme's has one version

    code, out = trimtab(
        running, "timeline", "support-answer", "--tenant", "globex", api_key=ADMIN_KEY
    )
    assert code == 0, out
    rows = [ln for ln in out.splitlines() if " apply " in ln]
    assert len(rows) == 2 and all("ml@globex" in row for row in rows), out

    # another tenant's key may not pick globex's route: it reads as absent
    code, out = trimtab(running, "versions", "support-answer", "--tenant", "globex")
    assert code == 1 and "404: no route named 'support-answer'" in out


def test_an_empty_tenant_reads_the_shared_route(running: Running, tmp_path: Path) -> None:
    """Acme's own route shadows the shared one of the same name; `--tenant ''` reads the
    shared one."""
    code, out = trimtab(
        running, "apply", "-f", write(tmp_path, ROUTES), "-m", "shared launch", api_key=ADMIN_KEY
    )
    assert code == 0, out
    own = ROUTES.replace("    risk_tier: 2\n", "    risk_tier: 2\n    tenant: acme\n")
    code, out = trimtab(
        running, "apply", "-f", write(tmp_path, own), "-m", "acme's own", api_key=ADMIN_KEY
    )
    assert code == 0, out
    for args, message in (([], "acme's own"), (["--tenant", ""], "shared launch")):
        code, out = trimtab(running, "timeline", "support-answer", *args)
        assert code == 0, out
        assert [message in ln for ln in out.splitlines() if " apply " in ln] == [True], out
        code, out = trimtab(running, "versions", "support-answer", *args)
        assert code == 0 and message in out, out
