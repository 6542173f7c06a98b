"""Diffs between versions: model, each parameter, each message's text."""

from __future__ import annotations

from trimtab.registry.bundle import Bundle, Message
from trimtab.registry.diff import diff_bundles

V1 = Bundle(
    "gpt-mock",
    {"temperature": 0.2, "max_tokens": 400, "stop": ["\n\n"]},
    (
        Message("system", "You are Acme's support assistant.\nPolicy: {{policy}}\nBe brief."),
        Message("user", "{{question}}"),
    ),
)
V2 = Bundle(
    "claude-mock",
    {"temperature": 0.5, "max_tokens": 400, "seed": 7},
    (
        Message(
            "system", "You are Acme's friendly support assistant.\nPolicy: {{policy}}\nBe brief."
        ),
        Message("user", "{{question}}"),
        Message("assistant", "Sure."),
    ),
)


def test_identical_bundles() -> None:
    d = diff_bundles(V1, Bundle.from_json(V1.to_json()), "v1", "v3")
    assert d.identical
    assert d.unified() == "v1 and v3 are identical\n"
    assert d.view()["params"] == [] and d.view()["messages"] == []


def test_model_and_parameters() -> None:
    d = diff_bundles(V1, V2, "v1", "v2")
    assert d.model == ("gpt-mock", "claude-mock")
    assert [p.view() for p in d.params] == [
        {"name": "seed", "change": "added", "from": None, "to": 7},
        {"name": "stop", "change": "removed", "from": ["\n\n"], "to": None},
        {"name": "temperature", "change": "changed", "from": 0.2, "to": 0.5},
    ]


def test_the_unified_text() -> None:
    assert diff_bundles(V1, V2, "v1", "v2").unified() == (
        "model: gpt-mock -> claude-mock\n"
        "params:\n"
        "  + seed: 7\n"
        '  - stop: ["\\n\\n"]\n'
        "  ~ temperature: 0.2 -> 0.5\n"
        "--- v1 messages[0] (system)\n"
        "+++ v2 messages[0] (system)\n"
        "@@ -1,3 +1,3 @@\n"
        "-You are Acme's support assistant.\n"
        "+You are Acme's friendly support assistant.\n"
        " Policy: {{policy}}\n"
        " Be brief.\n"
        "--- /dev/null\n"
        "+++ v2 messages[2] (assistant)\n"
        "@@ -0,0 +1 @@\n"
        "+Sure.\n"
    )


def test_messages_removed_and_roles_changed() -> None:
    d = diff_bundles(V2, V1, "v2", "v1")
    [changed, removed] = d.messages
    assert (changed.index, changed.change) == (0, "changed")
    assert (removed.index, removed.change, removed.role_before) == (2, "removed", "assistant")
    assert removed.diff.endswith("+++ /dev/null\n@@ -1 +0,0 @@\n-Sure.\n")
    swapped = Bundle(V1.model, V1.params, (V1.messages[0], Message("assistant", "{{question}}")))
    [role] = diff_bundles(V1, swapped, "v1", "v2").messages
    assert (role.role_before, role.role_after) == ("user", "assistant")
    assert "(same text; role user -> assistant)" in role.diff
