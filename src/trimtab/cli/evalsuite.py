"""The suite an eval command runs: a file's `evals:` section, checked here first, or the
suite applied on the server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from trimtab.cli.calls import call, fail
from trimtab.evals.suites import SuitesError, parse_suites


def suite_source(
    file: Path | None, suite: str, url: str, api_key: str | None
) -> tuple[dict[str, Any], str]:
    """The suite's definition and where it came from: `file`'s `evals:` section, else the
    suite applied on the server (`trimtab apply`), the caller's tenant's or the shared one."""
    if file is not None:
        return suite_definition(file, suite), str(file)
    applied = call(url, api_key, lambda c: c.eval_suite(suite))
    return applied["definition"], f"applied suite {suite}"


def suite_definition(file: Path, suite: str) -> dict[str, Any]:
    """The suite's definition from a file's `evals:` section, checked here first so a
    mistake names the file and the key before anything is started."""
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise fail(f"{file}: cannot read: {exc.strerror}") from None
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise fail(f"{file}: not a YAML file: {exc}") from None
    try:
        suites = parse_suites(data, str(file))
    except SuitesError as exc:
        raise fail(f"{file}: {len(exc.problems)} problem(s)\n" + str(exc)) from None
    raw = data["evals"]
    if suite not in raw:
        known = ", ".join(s.name for s in suites)
        raise fail(f"{file}: no suite '{suite}' in its evals: section (it has: {known})")
    definition: dict[str, Any] = raw[suite]
    return definition
