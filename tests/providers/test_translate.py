"""The shared vocabulary of translation (trimtab.providers.translate): the stop/finish reason
mapping, and properties of the round trip through both directions."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.providers.support import UP
from trimtab.providers.anthropic_to_openai import (
    anthropic_to_openai_request,
    openai_to_anthropic_response,
)
from trimtab.providers.openai_to_anthropic import (
    anthropic_to_openai_response,
    openai_chat_to_anthropic,
)
from trimtab.providers.translate import (
    JSON,
    finish_reason_from_stop_reason,
    stop_reason_from_finish_reason,
)


class TestReasonMapping:
    @pytest.mark.parametrize(
        ("stop", "finish"),
        [
            ("end_turn", "stop"),
            ("stop_sequence", "stop"),
            ("max_tokens", "length"),
            ("tool_use", "tool_calls"),
            ("refusal", "content_filter"),
            ("pause_turn", "stop"),
            (None, "stop"),
            ("brand_new", "stop"),
        ],
    )
    def test_finish_reason_mapping(self, stop: str | None, finish: str) -> None:
        assert finish_reason_from_stop_reason(stop) == finish

    @pytest.mark.parametrize(
        ("finish", "stop"),
        [
            ("stop", "end_turn"),
            ("length", "max_tokens"),
            ("tool_calls", "tool_use"),
            ("function_call", "tool_use"),
            ("content_filter", "refusal"),
            (None, "end_turn"),
        ],
    )
    def test_stop_reason_mapping(self, finish: str | None, stop: str) -> None:
        assert stop_reason_from_finish_reason(finish) == stop


_role_turns = st.lists(
    st.tuples(st.sampled_from(["user", "assistant"]), st.text(min_size=1, max_size=30)),
    min_size=1,
    max_size=8,
)


def _texts_by_role(messages: list[JSON]) -> list[tuple[str, str]]:
    """Collapse a chat to (role, text) turns, merging same-role neighbours like anthropic does."""
    turns: list[tuple[str, str]] = []
    for m in messages:
        content = m["content"]
        text = content if isinstance(content, str) else "".join(p["text"] for p in content)
        if turns and turns[-1][0] == m["role"]:
            turns[-1] = (m["role"], turns[-1][1] + text)
        else:
            turns.append((m["role"], text))
    return turns


@given(system=st.text(max_size=30), turns=_role_turns)
def test_openai_anthropic_openai_keeps_text(system: str, turns: list[tuple[str, str]]) -> None:
    messages: list[JSON] = [{"role": "system", "content": system}] if system else []
    messages += [{"role": role, "content": text} for role, text in turns]
    anthropic = openai_chat_to_anthropic({"messages": messages}, UP)
    back = anthropic_to_openai_request(anthropic, "gpt")
    back_msgs = back["messages"]
    if system:
        assert back_msgs[0] == {"role": "system", "content": system}
        back_msgs = back_msgs[1:]
    assert _texts_by_role(back_msgs) == _texts_by_role(
        [{"role": r, "content": t} for r, t in turns]
    )
    assert orjson.loads(orjson.dumps(anthropic)) == anthropic  # stays JSON-serializable


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=10),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=10,
)


@given(args=st.dictionaries(st.text(max_size=8), _json_values, max_size=4))
def test_tool_arguments_round_trip(args: JSON) -> None:
    anthropic_resp = {
        "id": "m",
        "content": [{"type": "tool_use", "id": "t", "name": "f", "input": args}],
        "stop_reason": "tool_use",
    }
    openai_resp = anthropic_to_openai_response(anthropic_resp, "g", created=0)
    back = openai_to_anthropic_response(openai_resp, "g")
    assert back["content"] == [{"type": "tool_use", "id": "t", "name": "f", "input": args}]
    assert back["stop_reason"] == "tool_use"
