"""The README's first snippets work, as written, against the server `make run` starts."""

from __future__ import annotations

import re

import pytest

from tests.support import MAKE_RUN_URL, README


def calling_it_snippets() -> list[str]:
    """The Python blocks of the section "Calling it", in order."""
    text = README.read_text()
    section = text.split("## Calling it", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


def test_the_readme_has_the_two_sdk_snippets() -> None:
    snippets = calling_it_snippets()
    assert len(snippets) == 2
    assert "from openai import OpenAI" in snippets[0]
    assert "from anthropic import Anthropic" in snippets[1]


@pytest.mark.parametrize("index", [0, 1], ids=["openai", "anthropic"])
def test_a_calling_it_snippet_runs_against_the_embedded_default(
    embedded_default: str, index: int, capsys: pytest.CaptureFixture[str]
) -> None:
    code = calling_it_snippets()[index]
    assert MAKE_RUN_URL in code  # the snippet targets make run's address; we move it only
    namespace: dict[str, object] = {}
    exec(compile(code.replace(MAKE_RUN_URL, embedded_default), "README.md", "exec"), namespace)
    if index == 0:
        assert namespace["reply"].choices[0].message.content  # type: ignore[attr-defined]
        assert capsys.readouterr().out  # the stream printed its text
    else:
        assert namespace["message"].content[0].text  # type: ignore[attr-defined]
