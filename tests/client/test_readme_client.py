"""The README's "Python client" snippet works, as written, against `make run`'s server."""

from __future__ import annotations

import re
import time

import httpx
import pytest

from tests.support import MAKE_RUN_URL, README


def client_snippet() -> str:
    section = README.read_text().split("## Python client", 1)[1].split("\n## ", 1)[0]
    (code,) = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    return str(code)


def test_the_python_client_snippet_runs_against_the_embedded_default(
    embedded_default: str, capsys: pytest.CaptureFixture[str]
) -> None:
    sent = []
    for _ in range(3):
        resp = httpx.post(
            embedded_default + "/v1/chat/completions",
            json={"model": "sim-1", "messages": [{"role": "user", "content": "Hello"}]},
            timeout=30,
        )
        assert resp.status_code == 200, resp.text
        sent.append(resp.headers["x-trimtab-request-id"])
    code = client_snippet()
    assert MAKE_RUN_URL in code
    with httpx.Client(timeout=30) as http:  # the writer is asynchronous: wait for the rows
        for _ in range(500):
            if len(http.get(embedded_default + "/api/requests").json()["data"]) == 3:
                break
            time.sleep(0.02)
    exec(compile(code.replace(MAKE_RUN_URL, embedded_default), "README.md", "exec"), {})
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[:2] for line in lines[:3]] == [[rid, "200"] for rid in sent[::-1]]
    assert lines[3] == "3 requests in the last hour"
    status, code_, request_id = lines[4].split()
    assert (status, code_) == ("404", "not_found") and request_id.startswith("req_")
