"""Session cookies: signed, expiring, bound to one secret; the secret file per install."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from trimtab.web.session import SESSION_S, Signer, load_secret

SECRET = b"s" * 32


def test_a_session_round_trips() -> None:
    signer = Signer(SECRET)
    session = signer.new("ab" * 32, now=1000.0)
    assert signer.load(signer.dump(session), now=1001.0) == session
    assert session.expires == 1000.0 + SESSION_S
    assert signer.new("x").csrf != signer.new("x").csrf


def test_a_changed_or_foreign_cookie_is_no_session() -> None:
    signer = Signer(SECRET)
    cookie = signer.dump(signer.new("digest", now=1000.0))
    payload, _, mac = cookie.partition(".")
    forged_payload = Signer(SECRET).dump(signer.new("other", now=1000.0)).partition(".")[0]
    for bad in (
        None, "", "nodot", payload + "." + mac[:-2] + "AA", forged_payload + "." + mac,
        Signer(b"t" * 32).dump(signer.new("digest", now=1000.0)),
    ):  # fmt: skip
        assert signer.load(bad, now=1001.0) is None


def test_a_session_ends_when_it_expires() -> None:
    signer = Signer(SECRET)
    cookie = signer.dump(signer.new("d", now=1000.0))
    assert signer.load(cookie, now=1000.0 + SESSION_S - 1) is not None
    assert signer.load(cookie, now=1000.0 + SESSION_S) is None


def test_the_secret_is_made_once_private_and_then_read(tmp_path: Path) -> None:
    path = tmp_path / "data" / "x.console-secret"
    first = load_secret(path)
    assert len(first) == 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_secret(path) == first  # a second process of the install reads the same
    path.write_bytes(b"short")
    with pytest.raises(ValueError, match="fewer than 32 bytes"):
        load_secret(path)
