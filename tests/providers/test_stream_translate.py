"""Both stream translators, as properties: a translated stream reassembles into what the
non-streaming translation of the same response gives (one file per direction beside it)."""

from __future__ import annotations

import itertools

import orjson
from hypothesis import given
from hypothesis import strategies as st

from tests.providers.streams import anthropic_events, openai_chunks
from trimtab.providers.accumulate import AnthropicStreamAccumulator, OpenAIStreamAccumulator
from trimtab.providers.anthropic_to_openai import openai_to_anthropic_response
from trimtab.providers.openai_to_anthropic import anthropic_to_openai_response
from trimtab.providers.stream_translate import AnthropicToOpenAIStream, OpenAIToAnthropicStream
from trimtab.providers.translate import JSON

_fragments = st.lists(st.text(max_size=12), max_size=12)
_args = st.dictionaries(
    st.text(max_size=6),
    st.one_of(st.integers(-(2**63), 2**63 - 1), st.text(max_size=8), st.booleans(), st.none()),
    max_size=4,
)


def _split(text: str, cuts: list[int]) -> list[str]:
    points = sorted({c % (len(text) + 1) for c in cuts})
    bounds = [0, *points, len(text)]
    return [text[a:b] for a, b in itertools.pairwise(bounds)]


@given(texts=_fragments, args=_args, cuts=st.lists(st.integers(0, 10_000), max_size=6))
def test_anthropic_stream_translates_like_the_non_streaming_response(
    texts: list[str], args: JSON, cuts: list[int]
) -> None:
    events = anthropic_events(texts, _split(orjson.dumps(args).decode(), cuts), "tool_use")
    anthropic_acc = AnthropicStreamAccumulator()
    openai_acc = OpenAIStreamAccumulator()
    tr = AnthropicToOpenAIStream("gw-model", created=1000, include_usage=True)
    for event in events:
        anthropic_acc.add(event)
        for chunk in tr.feed(event):
            openai_acc.add(chunk)
    expected = anthropic_to_openai_response(anthropic_acc.result(), "gw-model", created=1000)
    got = openai_acc.result()
    exp_msg, got_msg = expected["choices"][0]["message"], got["choices"][0]["message"]
    assert got_msg["content"] == exp_msg["content"] == ("".join(texts) or None)
    assert orjson.loads(got_msg["tool_calls"][0]["function"]["arguments"]) == args
    assert got_msg["tool_calls"][0]["id"] == exp_msg["tool_calls"][0]["id"]
    assert got["choices"][0]["finish_reason"] == expected["choices"][0]["finish_reason"]
    assert got["usage"] == expected["usage"]
    assert got["id"] == expected["id"]


@given(texts=_fragments, args=_args, cuts=st.lists(st.integers(0, 10_000), max_size=6))
def test_openai_stream_translates_like_the_non_streaming_response(
    texts: list[str], args: JSON, cuts: list[int]
) -> None:
    chunks = openai_chunks(texts, _split(orjson.dumps(args).decode(), cuts), "tool_calls")
    openai_acc = OpenAIStreamAccumulator()
    anthropic_acc = AnthropicStreamAccumulator()
    tr = OpenAIToAnthropicStream("gw-model", "msg_gw1")
    for chunk in chunks:
        openai_acc.add(chunk)
        for _, event in tr.feed(chunk):
            anthropic_acc.add(event)
    for _, event in tr.finish():
        anthropic_acc.add(event)
    expected = openai_to_anthropic_response(openai_acc.result(), "gw-model")
    got = anthropic_acc.result()
    assert got["content"] == expected["content"]
    assert got["stop_reason"] == expected["stop_reason"] == "tool_use"
    assert got["usage"] == expected["usage"] == {"input_tokens": 11, "output_tokens": 7}
    assert got["model"] == "gw-model"
