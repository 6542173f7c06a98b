"""A tenant's silences: confined to its tenant (a `tenant=T` matcher is added), and it
sees and ends only silences so confined. The API (api/alerts.py) and the console
(web/alerts.py) both apply these rules."""

from __future__ import annotations

from collections.abc import Sequence

from trimtab.alerts.model import Matcher, Silence
from trimtab.errors import Invalid
from trimtab.types import Principal


def silence_visible(principal: Principal, silence: Silence) -> bool:
    if principal.is_admin:
        return True
    return Matcher("tenant", "=", principal.tenant) in silence.matchers


def confined(principal: Principal, matchers: Sequence[str]) -> list[str]:
    """The matchers a silence by `principal` is made with: as given for an admin, else
    with `tenant=<its tenant>` added; a matcher naming another tenant is refused."""
    if principal.is_admin:
        return list(matchers)
    own = Matcher("tenant", "=", principal.tenant)
    for text in matchers:
        try:
            parsed = Matcher.parse(text)
        except ValueError:
            continue  # the service says what is wrong with it
        if parsed.label == "tenant" and parsed != own:
            raise Invalid(
                f"matchers: a key of tenant '{principal.tenant}' silences only its own",
                code="invalid_parameter",
                param="matchers",
            )
    return [*matchers, f"tenant={principal.tenant}"]
