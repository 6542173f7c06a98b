"""What every request of a run asks and every answer must be: the short prompt, or a
support ticket of --prompt-bytes, and the answer the mock gives."""

from __future__ import annotations

from dataclasses import dataclass

SHORT_PROMPT = "Say hello in five words."


@dataclass
class Payload:
    """What every request asks and every answer must be: the short prompt and the mock's
    greeting, or with --prompt-bytes/--reply-bytes a long prompt and the long answer the
    mock gives (learnt from the mock itself before any gateway is checked)."""

    prompt: str = SHORT_PROMPT
    max_tokens: int = 16
    content: str = "Hello from the mock upstream."  # bench/mock_upstream.py's greeting
    completion_tokens: int = 9


PAYLOAD = Payload()


# --prompt-bytes: a support ticket, cycled to the size asked for: sentences with order
# numbers, amounts, times and a version, and no personal data (the guardrails find nothing)
PROMPT_SENTENCES = (
    "Hello, I am writing about order 48213, which I placed on 21 November.",
    "The confirmation said it would arrive within 5 business days, but it has not come yet.",
    "The tracking page has shown the same status since Tuesday at 09:12.",
    "I paid 129.50 EUR including 7.95 EUR for express shipping, which now seems wasted.",
    "The app, version 2.4.1 on my phone, says the parcel is at the regional depot.",
    "Could you tell me whether it will be delivered this week or should be collected?",
    "If it is lost, I would prefer a replacement over a refund, size 42 in dark blue.",
    "Please also check whether the second item, the 3-pack of socks, was shipped at all.",
    "Thank you for your help, I have been a customer for about 6 years.",
)


def prompt_text(nbytes: int) -> str:
    """The short prompt, or a ticket of ``nbytes`` bytes (a word cut to fit)."""
    if nbytes <= 0:
        return SHORT_PROMPT
    text = ""
    n = 0
    while len(text) < nbytes:
        text += ("" if not text else " ") + PROMPT_SENTENCES[n % len(PROMPT_SENTENCES)]
        n += 1
    return text[:nbytes].rstrip()
