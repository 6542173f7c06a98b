"""The listening socket of `trimtab serve`, bound before anything else is touched.

Binding first means a port that is taken fails at once, before the store is migrated (or
an SQLite file created), with a message that says which process holds the port when this
machine tells (Linux: /proc/net/tcp{,6} and the socket inodes in /proc/*/fd).
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

_LISTEN = "0A"  # TCP state LISTEN in /proc/net/tcp


class PortTaken(OSError):
    """The address cannot be bound; the message says why and, if known, by whom."""


def bind(host: str, port: int) -> socket.socket:
    """A bound TCP socket (not yet listening) for `host`:`port`, as uvicorn binds it
    (SO_REUSEADDR, inheritable). Raises PortTaken."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise PortTaken(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        where = f"[{host}]:{port}" if family == socket.AF_INET6 else f"{host}:{port}"
        if exc.errno == 98:  # EADDRINUSE
            holder = port_holder(port)
            who = f" by {holder}" if holder else ""
            raise PortTaken(
                f"cannot listen on {where}: the port is already in use{who}; stop that "
                "process or choose another port with --port"
            ) from None
        raise PortTaken(f"cannot listen on {where}: {exc.strerror or exc}") from None
    sock.set_inheritable(True)
    return sock


def port_holder(port: int, proc: Path = Path("/proc")) -> str | None:
    """'pid N (command line)' of a process listening on TCP `port`; None if unknown."""
    inodes = _listening_inodes(port, proc)
    if not inodes:
        return None
    try:
        pids = [p for p in proc.iterdir() if p.name.isdigit()]
    except OSError:
        return None
    for pid in pids:
        try:
            fds = list((pid / "fd").iterdir())
        except OSError:
            continue  # gone, or another user's
        for fd in fds:
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:[") and target[8:-1] in inodes:
                return f"pid {pid.name} ({_command(pid)})"
    return "another process (its pid is not visible to this user)"


def _listening_inodes(port: int, proc: Path) -> set[str]:
    inodes: set[str] = set()
    for table in ("tcp", "tcp6"):
        try:
            lines = (proc / "net" / table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) < 10 or fields[3] != _LISTEN:
                continue
            local_port = fields[1].rpartition(":")[2]
            if int(local_port, 16) == port:
                inodes.add(fields[9])
    return inodes


def _command(pid: Path) -> str:
    try:
        raw = (pid / "cmdline").read_bytes()
    except OSError:
        return "?"
    text = raw.replace(b"\0", b" ").decode("utf-8", "replace").strip()
    return text[:200] or "?"
