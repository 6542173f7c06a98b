"""The personal data planted in requests, and where to look for it on disk."""

from __future__ import annotations

import uuid
from pathlib import Path

CARD = "4111 1111 1111 1111"
CARD_DIGITS = "4111111111111111"
KEY = "sk-proj-" + "Zq7Xw2Lm9Rt4Vb8Nc3Hd6Jf1Kp5Sy0Ga"
HASH_KEY = "a-test-hmac-key-of-32-characters!"


def planted() -> tuple[str, str]:
    """(an email unique to the test, a sentence carrying it, the card and the key)."""
    email = f"jane.{uuid.uuid4().hex[:8]}@example.com"
    return email, f"{email} paid with {CARD} using key {KEY} please refund"


def leaks(data: bytes, email: str) -> list[str]:
    """Which planted values occur in `data` (the card also without its spaces)."""
    found = []
    for name, value in (("email", email), ("card", CARD), ("card", CARD_DIGITS), ("key", KEY)):
        if value.encode() in data:
            found.append(name)
    return found


def files_under(*paths: Path) -> bytes:
    """Every byte of these files and of the files under these directories."""
    out = bytearray()
    for path in paths:
        if path.is_file():
            out += path.read_bytes()
        elif path.is_dir():
            for f in sorted(path.rglob("*")):
                if f.is_file():
                    out += f.read_bytes()
    return bytes(out)


class Hooks:
    """A webhook receiver on loopback (a thread): every POST body it was sent, as bytes."""

    def __init__(self) -> None:
        import http.server
        import threading

        received: list[bytes] = []
        self.received = received

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                received.append(self.rfile.read(length))
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
