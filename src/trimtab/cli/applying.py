"""`trimtab apply -f FILE [-f FILE ...]`: the `routes:`, `slos:` and `evals:` sections of
one or several files, checked together before anything is applied.

Every file is read and every section parsed here first (the routes without the gateway's
model list, which the server checks), with the routes the SLOs and suites name looked up
among the files' and the server's: any problem in any file and nothing is applied. Then
the routes go in one request (one transaction), then the SLOs, then the suites, so an SLO
or a suite may name a route the same files create.

`--prune` makes the files the truth for SLOs: the SLOs of the caller's scope (an admin's:
the shared ones) that no file names are deleted, in the transaction that applies the rest,
and printed. Only when some file has an `slos:` section: a routes file alone says nothing
of SLOs and prunes none. `--dry-run` (with `--prune`) prints what the SLOs would become and
which would be deleted, and changes nothing, routes and suites included.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console
from rich.markup import escape

from trimtab.bounds import safe_load_yaml
from trimtab.cli import slo
from trimtab.cli.calls import call, fail, file_refused
from trimtab.client.types import Applied, AppliedSuite
from trimtab.evals.suites import SuitesError, parse_suites
from trimtab.registry.spec import RoutesError, parse_routes
from trimtab.slo.spec import SlosError, parse_slos

SECTIONS = ("routes", "slos", "evals")


@dataclass
class Plan:
    """What the files hold, merged: each section's entries by name, and where each came from."""

    files: list[Path]
    routes: dict[str, Any] = field(default_factory=dict)
    slos: dict[str, Any] = field(default_factory=dict)
    evals: dict[str, Any] = field(default_factory=dict)
    origin: dict[tuple[str, str], Path] = field(default_factory=dict)
    named_routes: list[tuple[Path, str, str]] = field(default_factory=list)  # file, key, route

    @property
    def source(self) -> str:
        return ", ".join(str(f) for f in self.files)


def _load(file: Path) -> Any:
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise fail(f"{file}: cannot read: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise fail(f"{file}: not a UTF-8 text file") from None
    try:
        return safe_load_yaml(text)
    except yaml.YAMLError as exc:
        raise fail(f"{file}: invalid YAML: {exc}") from None


def plan(files: list[Path]) -> tuple[Plan, list[str]]:
    """The files' sections merged, and every problem found in them (each naming its file
    and key)."""
    out = Plan(files)
    problems: list[str] = []
    for file in files:
        data = _load(file)
        if not isinstance(data, dict) or not any(k in data for k in SECTIONS):
            problems.append(
                f"{file}: the top level must be a mapping with routes:, slos: or evals:"
            )
            continue
        problems += [f"{file}: {k}: unknown key" for k in data if k not in SECTIONS]
        source = str(file)
        if "routes" in data:
            try:
                parse_routes({"routes": data["routes"]}, source)
            except RoutesError as exc:
                problems += exc.problems
        if "slos" in data:
            try:
                for d in parse_slos({"slos": data["slos"]}, source):
                    if d.selector.route is not None:
                        out.named_routes.append((file, f"slos.{d.name}.route", d.selector.route))
            except SlosError as exc:
                problems += exc.problems
        if "evals" in data:
            try:
                for s in parse_suites({"evals": data["evals"]}, source):
                    if s.route is not None:
                        out.named_routes.append((file, f"evals.{s.name}.route", s.route))
            except SuitesError as exc:
                problems += exc.problems
        for section in SECTIONS:
            entries = data.get(section)
            if not isinstance(entries, dict):
                continue
            merged: dict[str, Any] = getattr(out, section)
            for name, entry in entries.items():
                first = out.origin.get((section, name))
                if first is not None:
                    problems.append(
                        f"{file}: {section}.{name}: also defined in {first}; a name once"
                    )
                    continue
                out.origin[(section, name)] = file
                merged[name] = entry
    return out, problems


def apply_files(
    files: list[Path],
    message: str,
    url: str,
    api_key: str | None,
    show_applied: Callable[[list[Applied]], None],
    *,
    prune: bool = False,
    dry_run: bool = False,
) -> None:
    """Check every file, then apply routes, suites and SLOs; print what changed
    (`show_applied` prints the routes' results). `prune`: delete the SLOs no file names;
    `dry_run`: say what `prune` would do, change nothing."""
    if dry_run and not prune:
        raise fail("--dry-run goes with --prune: it shows what the prune would delete")
    if prune and "slos" not in _sections(files):
        Console(highlight=False, soft_wrap=True).print(
            "--prune: no file has an slos: section; no SLO is deleted"
        )
        if dry_run:
            return
        prune = False
    if len(files) == 1 and not dry_run:
        data = _load(files[0])
        if isinstance(data, dict) and set(data) == {"routes"}:
            # a routes file alone: the server reads its text, with its line numbers
            text = files[0].read_text(encoding="utf-8")
            show_applied(call(url, api_key, lambda c: c.apply(text, message, source=str(files[0]))))
            return
    found, problems = plan(files)
    sections = [s for s in (found.routes, found.slos, found.evals) if s]
    if found.named_routes and not problems and len(sections) > 1:
        # a later section's unknown route would be refused after an earlier one applied;
        # a file of one section leaves the check to the server, which applies nothing
        known = set(found.routes) | {r["name"] for r in call(url, api_key, lambda c: c.routes())}
        for file, key, route in found.named_routes:
            if route not in known:
                problems.append(f"{file}: {key}: unknown route '{route}'")
    if problems:
        where = found.source if len(files) > 1 else str(files[0])
        raise fail(
            f"{where}: {len(problems)} problem(s), nothing was applied\n" + "\n".join(problems)
        )
    source = found.source
    if dry_run:  # the SLOs only: routes and suites have no dry run
        slos_text = yaml.safe_dump({"slos": found.slos}, sort_keys=False)
        slo.apply_slos(
            Path(source),
            slos_text,
            message,
            url,
            api_key,
            prune=True,
            dry_run=True,
            planned_routes=list(found.routes),  # they do not exist yet: created first
            planned_suites=list(found.evals),  # applied before the SLOs, in the same scope
        )
        Console(highlight=False, soft_wrap=True).print("dry run: nothing was changed")
        return
    if found.routes:
        routes_text = yaml.safe_dump({"routes": found.routes}, sort_keys=False)
        applied: list[Applied] = call(
            url, api_key, lambda c: c.apply(routes_text, message, source=source)
        )
        show_applied(applied)
    if found.evals:  # before the SLOs: an eval-score SLO's suite must be there
        evals_text = yaml.safe_dump({"evals": found.evals}, sort_keys=False)
        suites: list[AppliedSuite] = call(
            url,
            api_key,
            lambda c: c.apply_eval_suites(evals_text, message, source=source),
            file_refused(source, "invalid_suite", "no suite was changed"),
        )
        show_suites(suites)
    if found.slos:
        slos_text = yaml.safe_dump({"slos": found.slos}, sort_keys=False)
        slo.apply_slos(Path(source), slos_text, message, url, api_key, prune=prune)


def _sections(files: list[Path]) -> set[str]:
    """The top-level sections the files hold."""
    out: set[str] = set()
    for file in files:
        data = _load(file)
        if isinstance(data, dict):
            out |= {k for k in SECTIONS if k in data}
    return out


def show_suites(results: list[AppliedSuite]) -> None:
    out = Console(highlight=False, soft_wrap=True)
    for r in results:
        name = f"[bold]{escape(r['suite'])}[/bold] (eval suite)"
        if r["status"] == "unchanged":
            out.print(f"{name}: unchanged")
        else:
            colour = "green" if r["status"] == "created" else "yellow"
            out.print(f"{name}: [{colour}]{r['status']}[/{colour}] ({r['digest'][:12]})")
