"""The one request helper: every command ends a refusal, an unreachable server or a URL
that is not one with the same `error: ...` line and exit code 1."""

from __future__ import annotations

import pytest

from tests.cli.support import runner, trimtab
from tests.support import ADMIN_KEY, Running
from trimtab.cli import cli


def test_a_missing_key_is_explained_in_the_clis_words(running: Running) -> None:
    for args in (["routes"], ["requests"], ["summary"], ["keys", "list"]):
        code, out = trimtab(running, *args, api_key=None)
        assert code == 1, out
        assert "401: no API key: set TRIMTAB_API_KEY or pass --api-key (request id: req_" in out
        assert "Authorization" not in out


@pytest.mark.parametrize(
    "args",
    [["routes"], ["versions", "faq"], ["rollout", "status", "faq"], ["requests"], ["keys", "list"]],
    ids=lambda args: " ".join(args),
)
def test_a_url_that_is_not_one_is_one_line_and_exit_1(args: list[str]) -> None:
    """httpx refuses "http://[::1" before any request: a line naming --url, no traceback."""
    result = runner.invoke(cli, [*args, "--url", "http://[::1", "--api-key", ADMIN_KEY])
    assert result.exit_code == 1, result.output
    assert result.output.startswith("error: --url http://[::1: not a URL: Invalid port"), (
        result.output
    )
    assert len(result.output.strip().splitlines()) == 1
    assert result.exception is None or isinstance(result.exception, SystemExit)
