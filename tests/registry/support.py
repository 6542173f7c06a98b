"""The appliers and the routes file of the route store tests (the rollout tests' too)."""

from __future__ import annotations

from trimtab.registry.scope import Applier, RouteKey
from trimtab.registry.spec import RouteDefinition, load_routes

ADMIN = Applier("ops@acme", "acme", admin=True)


OPERATOR = Applier("ml@acme", "acme", admin=False)


GLOBEX = Applier("ml@globex", "globex", admin=False)


SHARED_ROUTE = RouteKey("", "support-answer")  # what an admin applies without `tenant:`


ACME_ROUTE = RouteKey("acme", "support-answer")  # what acme's operator applies


def routes_file(
    content: str = "Policy: {{policy}}",
    *,
    route: str = "support-answer",
    owner: str = "o@a",
    tier: int = 2,
    extra: str = "",
) -> list[RouteDefinition]:
    text = f"""
routes:
  {route}:
    owner: {owner}
    risk_tier: {tier}
{extra}    version:
      model: gpt-mock
      params: {{temperature: 0.2}}
      messages:
        - {{role: system, content: "{content}"}}
        - {{role: user, content: "{{{{question}}}}"}}
"""
    return load_routes(text, "routes.yaml")
