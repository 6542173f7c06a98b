"""The machine a run measured on, for the report: CPU, kernel, versions, load."""

from __future__ import annotations

import contextlib
import importlib.metadata
import os
import platform
import shutil
import subprocess
from pathlib import Path
from typing import Any


def pkg_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def machine_facts(litellm_python: Path | None) -> dict[str, Any]:
    cpu_model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    mem_total_gib = 0.0
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_total_gib = round(int(line.split()[1]) / 1024 / 1024, 1)
    os_name = platform.platform()
    with contextlib.suppress(OSError):
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                os_name = line.split("=", 1)[1].strip('"')
    versions: dict[str, str | None] = {
        name: pkg_version(name)
        for name in ("trimtab", "uvicorn", "starlette", "aiohttp", "uvloop", "httptools", "orjson")
    }
    versions["litellm"] = None
    if litellm_python is not None and litellm_python.exists():
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            out = subprocess.run(
                [
                    str(litellm_python),
                    "-c",
                    "import importlib.metadata as m;"
                    "print(m.version('litellm'), m.version('uvicorn'))",
                ],
                capture_output=True,
                text=True,
                timeout=30,
            ).stdout.split()
            if len(out) == 2:
                versions["litellm"] = out[0]
                versions["uvicorn (litellm venv)"] = out[1]
    wrk_version = None
    if shutil.which("wrk"):
        banner = subprocess.run(["wrk", "--version"], capture_output=True, text=True).stdout
        wrk_version = banner.split("[")[0].replace("wrk", "").strip() or None
    redis_bin = shutil.which("redis-server")
    if redis_bin is not None:
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            banner = subprocess.run(
                [redis_bin, "--version"], capture_output=True, text=True, timeout=10
            ).stdout
            versions["redis-server"] = next(
                (w[2:] for w in banner.split() if w.startswith("v=")), None
            )
    return {
        "cpu_model": cpu_model,
        "cores": os.cpu_count(),
        "ram_gib": mem_total_gib,
        "os": os_name,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "wrk": wrk_version,
        "versions": versions,
    }
