"""`storage.bodies`: what of a request's bodies may be written anywhere (docs/guardrails.md).

One function, `BodyPolicy.scrub`, rewrites a record in place before it is written: the
recorder calls it first thing in `Recorder.record`, the one point every record passes
before the journal, the spill file, the writer's queue and so the store. Nothing of a
record reaches disk unscrubbed, so the journal and the spill file hold what the store
holds.

- `full`: as sent and received.
- `redacted`: every string of the request, the upstream request, the answer and the
  error message but the values of structure keys goes through the PII detector
  (guardrails/pii.py) in one pass, so one value has one placeholder (`<EMAIL_1>`) across
  all of them; JSON stays JSON.
- `hashed`: every string of the bodies but their structure (roles, models, types) is
  replaced by `hmac-sha256:<hex>` under the configured key, so identical texts match
  and nothing readable is kept; the error message is redacted.
- `none`: no bodies; the error message is redacted.

A record's mode is the strictest of its tenant's and its route's (full < redacted <
hashed < none), each falling back to the gateway's `storage.bodies`.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Protocol

import orjson

from trimtab.config import BodiesMode, StorageConfig
from trimtab.rollouts.table import RouteTable

log = logging.getLogger("trimtab.privacy")
Redactor = Callable[[str], str]  # a text -> the same text with its PII replaced

STRICTNESS: dict[BodiesMode, int] = {"full": 0, "redacted": 1, "hashed": 2, "none": 3}
# keys whose string values are structure, not content: kept as they are by `hashed`
STRUCTURE = frozenset(
    {"role", "model", "type", "object", "finish_reason", "stop_reason", "id", "tool_call_id"}
)
# joins the strings of one record for a single pass of the detector; no PII rule matches
# a NUL, and JSON strings never hold one unescaped (orjson writes it as \u0000)
_SEP = "\x00\n\x00"


class Scrubbable(Protocol):
    """The fields of a telemetry record the policy reads and rewrites."""

    tenant: str
    route: str | None
    request_body: str | None
    upstream_request_body: str | None
    response_body: str | None
    error_message: str | None
    attributes: dict[str, Any] | None


def strictest(*modes: BodiesMode | None) -> BodiesMode | None:
    found: list[BodiesMode] = [m for m in modes if m is not None]
    if not found:
        return None
    return max(found, key=lambda mode: STRICTNESS[mode])


class BodyPolicy:
    """Decides and applies each record's `storage.bodies`; cheap when the mode is `full`."""

    def __init__(
        self,
        config: StorageConfig,
        redact: Redactor,
        *,
        routes: Callable[[str, str], BodiesMode | None] = lambda tenant, route: None,
    ) -> None:
        """`routes(tenant, route)`: the route's own `storage.bodies`, None when it sets none."""
        self._default: BodiesMode = config.bodies
        self._tenants: dict[str, BodiesMode] = {
            name: t.bodies for name, t in config.tenants.items() if t.bodies is not None
        }
        self._key = (config.hash_key or "").encode()
        self._redact = redact
        self._routes = routes

    def mode(self, tenant: str, route: str | None) -> BodiesMode:
        route_mode = self._routes(tenant, route) if route is not None else None
        chosen = strictest(self._tenants.get(tenant), route_mode)
        return chosen if chosen is not None else self._default

    def applies(self, record: Scrubbable) -> bool:
        """Whether the record's mode is anything but `full` (a few dict lookups)."""
        return self.mode(record.tenant, record.route) != "full"

    def scrub(self, record: Scrubbable) -> None:
        """Both steps at once (the recorder runs them apart: see telemetry/recorder.py)."""
        if self.applies(record):
            self.scrub_errors(record)
            self.scrub_bodies(record)

    def scrub_errors(self, record: Scrubbable) -> None:
        """The error message and the upstream errors of the attempts (a provider's message
        may quote the input), redacted in every mode but `full`."""
        slots = list(_attribute_strings(record.attributes))
        if record.error_message:
            slots.append(_Slot(record, "error_message"))
        for slot in slots:
            text = slot.get()
            try:
                new = self._redact(text)
            except Exception as exc:  # fail closed: the text is not kept
                new = _failed(exc)
            if new != text:
                slot.set(new)

    def scrub_bodies(self, record: Scrubbable) -> None:
        """The bodies as the mode says; if that fails, none (fail closed, logged)."""
        mode = self.mode(record.tenant, record.route)
        try:
            if mode == "redacted":
                self._redact_bodies(record)
            elif mode == "hashed":
                record.request_body = self.hash_body(record.request_body)
                record.upstream_request_body = self.hash_body(record.upstream_request_body)
                record.response_body = self.hash_body(record.response_body)
            elif mode == "none":
                record.request_body = record.upstream_request_body = None
                record.response_body = None
        except Exception as exc:
            record.request_body = record.upstream_request_body = record.response_body = None
            attributes = record.attributes if record.attributes is not None else {}
            attributes["storage"] = {"bodies_dropped": _failed(exc)}
            record.attributes = attributes

    # -- redacted ------------------------------------------------------------------------

    def _redact_bodies(self, record: Scrubbable) -> None:
        """Every string of the three bodies in one pass of the detector: one value, one
        placeholder, across the request, what was sent upstream and the answer. The
        values of structure keys (`STRUCTURE`: roles, models, types, ids) are left as
        they are, as `hashed` leaves them."""
        bodies = [
            _parse(record.request_body),
            _parse(record.upstream_request_body),
            _parse(record.response_body),
        ]
        places: list[tuple[Any, Any, _Json | _Text]] = []
        texts: list[str] = []
        for body in bodies:
            if body is not None:
                _content_strings(body, places, texts)
        if not texts:
            return
        redacted = self._redact(_SEP.join(texts)).split(_SEP)
        if len(redacted) != len(texts):  # a rule matched across a separator: one by one
            redacted = [self._redact(t) for t in texts]
        for (holder, at, owner), old, new in zip(places, texts, redacted, strict=True):
            if new != old:
                if at is None:
                    owner.value = new
                else:
                    holder[at] = new
                owner.changed = True
        record.request_body = _dump(bodies[0], record.request_body)
        record.upstream_request_body = _dump(bodies[1], record.upstream_request_body)
        record.response_body = _dump(bodies[2], record.response_body)

    # -- hashed --------------------------------------------------------------------------

    def digest(self, text: str) -> str:
        return "hmac-sha256:" + hmac.new(self._key, text.encode(), hashlib.sha256).hexdigest()

    def hash_body(self, body: str | None) -> str | None:
        if body is None:
            return None
        parsed = _parse(body)
        if not isinstance(parsed, _Json):
            return self.digest(body)
        return orjson.dumps(self._hash_value(parsed.value, None)).decode()

    def _hash_value(self, value: Any, key: str | None) -> Any:
        if isinstance(value, str):
            return value if key in STRUCTURE else self.digest(value)
        if isinstance(value, dict):
            return {k: self._hash_value(v, k) for k, v in value.items()}
        if isinstance(value, list):
            return [self._hash_value(v, key) for v in value]
        return value


def _failed(exc: Exception) -> str:
    """What is kept instead of a text the policy could not scrub: the failure, no data."""
    log.error(
        "storage.bodies: scrubbing a record failed (%s); its text is not kept",
        exc.__class__.__name__,
    )
    return f"(not kept: scrubbing failed with {exc.__class__.__name__})"


# -- walking a body's strings -------------------------------------------------------------


class _Json:
    __slots__ = ("changed", "value")

    def __init__(self, value: Any) -> None:
        self.value = value
        self.changed = False


class _Text:
    """A body that is not JSON (a client's malformed request): one string."""

    __slots__ = ("changed", "value")

    def __init__(self, value: str) -> None:
        self.value = value
        self.changed = False


class _Slot:
    """One string somewhere: a container and its key (or index), read and written."""

    __slots__ = ("at", "holder", "owner")

    def __init__(self, holder: Any, at: Any, owner: _Json | _Text | None = None) -> None:
        self.holder = holder
        self.at = at
        self.owner = owner

    def get(self) -> str:
        if isinstance(self.holder, (dict, list)):
            value = self.holder[self.at]
        else:
            value = getattr(self.holder, self.at)
        assert isinstance(value, str)
        return value

    def set(self, value: str) -> None:
        if isinstance(self.holder, (dict, list)):
            self.holder[self.at] = value
        else:
            setattr(self.holder, self.at, value)
        if self.owner is not None:
            self.owner.changed = True


def _parse(body: str | None) -> _Json | _Text | None:
    if body is None:
        return None
    try:
        return _Json(orjson.loads(body))
    except orjson.JSONDecodeError:
        return _Text(body)


def _content_strings(
    body: _Json | _Text, places: list[tuple[Any, Any, _Json | _Text]], texts: list[str]
) -> None:
    """Append each content string of the body and where it sits (container and key or
    index; None: the body itself is the string). One loop and no object per string: this
    runs for every record of a gateway whose bodies are `redacted`."""
    value = body.value
    if type(value) is str:
        places.append((body, None, body))
        texts.append(value)
        return
    stack: list[Any] = [value]
    while stack:
        node = stack.pop()
        if type(node) is dict:
            for key, item in node.items():
                kind = type(item)
                if kind is str:
                    if key not in STRUCTURE:
                        places.append((node, key, body))
                        texts.append(item)
                elif kind is dict or kind is list:
                    stack.append(item)
        elif type(node) is list:
            for index, item in enumerate(node):
                kind = type(item)
                if kind is str:
                    places.append((node, index, body))
                    texts.append(item)
                elif kind is dict or kind is list:
                    stack.append(item)


def _attribute_strings(attributes: Mapping[str, Any] | None) -> Iterator[_Slot]:
    """The upstream errors of the attempts: a provider's message may quote the input."""
    if not attributes:
        return
    attempts = attributes.get("attempts")
    if isinstance(attempts, list):
        for attempt in attempts:
            if isinstance(attempt, dict) and isinstance(attempt.get("error"), str):
                yield _Slot(attempt, "error")


def _dump(body: _Json | _Text | None, original: str | None) -> str | None:
    if body is None or not body.changed:
        return original
    if isinstance(body, _Text):
        return body.value
    return orjson.dumps(body.value).decode()


def body_policy(
    config: StorageConfig,
    routes: Callable[[str, str], BodiesMode | None] = lambda tenant, route: None,
) -> BodyPolicy:
    """The policy with the guardrails' PII detector (every structured entity type)."""
    from trimtab.guardrails.pii import redact

    return BodyPolicy(config, lambda text: redact(text).text, routes=routes)


def route_modes(table: RouteTable) -> Callable[[str, str], BodiesMode | None]:
    """A route's own `storage.bodies` from the gateway's route table (own, else shared)."""

    def mode(tenant: str, route: str) -> BodiesMode | None:
        entry = table.get(route, tenant)
        value = entry.storage_bodies if entry is not None else None
        return value if value in _MODES else None

    return mode


_MODES = frozenset(STRICTNESS)
