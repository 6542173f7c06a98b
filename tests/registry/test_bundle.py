"""Bundles: canonical bytes, stable digests, templates and rendering."""

from __future__ import annotations

import hashlib

import pytest

from trimtab.registry.bundle import (
    Bundle,
    Message,
    MissingVariables,
    Template,
    TemplateError,
    VariableError,
    render,
)
from trimtab.registry.spec import load_routes

FLOW = """
routes:
  r:
    owner: o
    risk_tier: 1
    version:
      model: gpt-mock
      params: {temperature: 1, max_tokens: 400}
      messages:
        - {role: system, content: "Policy: {{policy}}"}
        - {role: user, content: "{{ question }}"}
"""

BLOCK = """
routes:
  r:
    version:
      messages:
        - content: "Policy: {{policy}}"
          role: system
        - role: user
          content: "{{ question }}"
      params:
        max_tokens: 400
        temperature: 1.0
      model: gpt-mock
    risk_tier: 1
    owner: someone else   # route metadata is not part of the bundle
"""


def bundle_of(text: str) -> Bundle:
    return load_routes(text, "routes.yaml")[0].bundle


def test_the_canonical_form_is_sorted_compact_json() -> None:
    b = bundle_of(FLOW)
    assert b.canonical() == (
        b'{"messages":[{"content":"Policy: {{policy}}","role":"system"},'
        b'{"content":"{{ question }}","role":"user"}],'
        b'"model":"gpt-mock","params":{"max_tokens":400,"temperature":1.0}}'
    )
    assert b.digest == hashlib.sha256(b.canonical()).hexdigest()


def test_the_digest_depends_on_content_only() -> None:
    """Key order, YAML style, 1 vs 1.0 and route metadata do not change the digest."""
    assert bundle_of(FLOW).digest == bundle_of(BLOCK).digest
    assert Bundle.from_json(bundle_of(FLOW).to_json()).digest == bundle_of(FLOW).digest


@pytest.mark.parametrize(
    "change",
    [
        ("gpt-mock", "claude-mock"),
        ("temperature: 1,", "temperature: 0.9,"),
        ("Policy: {{policy}}", "Policy:  {{policy}}"),
        ("role: user", "role: assistant"),
    ],
)
def test_any_change_of_content_changes_the_digest(change: tuple[str, str]) -> None:
    assert bundle_of(FLOW.replace(*change)).digest != bundle_of(FLOW).digest


def test_non_ascii_text_is_canonical_utf8() -> None:
    b = Bundle("m", {}, (Message("user", "Grüße {{name}} ✓"),))
    assert "Grüße {{name}} ✓".encode() in b.canonical()


def test_templates_split_literals_and_variables() -> None:
    t = Template.parse("Hi {{name}}, about {{ topic }}: {{name}}!")
    assert t.parts == ("Hi ", "name", ", about ", "topic", ": ", "name", "!")
    assert t.variables == ("name", "topic")
    assert t.render({"name": "Ann", "topic": "billing"}) == "Hi Ann, about billing: Ann!"
    assert Template.parse("no variables").render({}) == "no variables"


@pytest.mark.parametrize("text", ["{{}}", "{{ a b }}", "{{1x}}", "open {{ never closed", "{{a-b}}"])
def test_malformed_placeholders_are_refused(text: str) -> None:
    with pytest.raises(TemplateError, match="is not a template variable"):
        Template.parse(text)


def test_render_fills_every_message() -> None:
    b = bundle_of(FLOW)
    assert render(b, {"policy": "refunds within 30 days", "question": "Can I return it?"}) == [
        {"role": "system", "content": "Policy: refunds within 30 days"},
        {"role": "user", "content": "Can I return it?"},
    ]


def test_render_names_each_missing_variable() -> None:
    b = bundle_of(FLOW)
    with pytest.raises(MissingVariables, match=r"^missing template variable 'question'$") as one:
        render(b, {"policy": "p"})
    assert one.value.names == ("question",)
    with pytest.raises(MissingVariables, match=r"variables 'policy', 'question'$"):
        render(b, {})


def test_render_values() -> None:
    b = bundle_of(FLOW)
    # numbers become text; unused variables are ignored
    out = render(b, {"policy": 30, "question": 1.5, "unused": "x"})
    assert [m["content"] for m in out] == ["Policy: 30", "1.5"]
    # a value is inserted as it is, never expanded again
    out = render(b, {"policy": "{{question}}", "question": "q"})
    assert out[0]["content"] == "Policy: {{question}}"
    for bad, kind in ((None, "null"), (True, "bool"), ({"a": 1}, "dict"), ([1], "list")):
        with pytest.raises(
            VariableError, match=f"'policy' must be a string or a number, not {kind}"
        ):
            render(b, {"policy": bad, "question": "q"})
