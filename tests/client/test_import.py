"""`import trimtab` stays light; `from trimtab import Client` loads the client."""

from __future__ import annotations

import subprocess
import sys


def loaded_after(statement: str) -> set[str]:
    code = f"import sys; {statement}; print(' '.join(sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_import_trimtab_imports_neither_httpx_nor_the_client() -> None:
    loaded = loaded_after("import trimtab")
    assert "httpx" not in loaded and "trimtab.client" not in loaded


def test_from_trimtab_import_client_loads_it() -> None:
    loaded = loaded_after("from trimtab import AsyncClient, Client, TrimtabError")
    assert {"httpx", "trimtab.client"} <= loaded
