"""How `trimtab eval` prints a run, a judge's calibration and a comparison, and writes a
report file."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from trimtab.cli.calls import fail
from trimtab.cli.tables import table, version, when
from trimtab.client.types import EvalRunDetail
from trimtab.evals import report


def print_calibration(calibration: Mapping[str, Any]) -> None:
    out = Console(highlight=False, soft_wrap=True)
    for scorer, c in calibration.items():
        kappa = "n/a" if c["kappa"] is None else f"{c['kappa']:.2f}"
        agree = "n/a" if c["agreement"] is None else f"{c['agreement']:.0%}"
        rates = ""
        if c["items"]:
            rates = (
                f"; passes: judge {c['judge_pass_rate']:.0%}, people {c['people_pass_rate']:.0%}"
            )
        out.print(
            f"judge {escape(scorer)} against people on {escape(c['dataset'])} "
            f"({c['items']} items): Cohen's kappa {kappa}, agreement {agree}{rates}"
        )
        if c["disagreements"]:
            out.print(
                "  they disagree on: " + ", ".join(escape(i) for i in c["disagreements"][:20])
            )
        for problem in c["problems"][:5]:
            out.print(f"  [yellow]not used[/yellow]: {escape(problem)}")


def _interval(pair: list[float] | None, percent: bool) -> str:
    if pair is None:
        return ""
    low, high = pair
    return f"{low:.1%} to {high:.1%}" if percent else f"{low:.3f} to {high:.3f}"


def print_run(detail: EvalRunDetail) -> None:
    out = Console(highlight=False, soft_wrap=True)
    target = (
        f"route {escape(detail['route'] or '')} {version(detail['route_version'])}"
        if detail["route"] is not None
        else f"model {escape(detail['model'] or '')}"
    )
    out.print(
        f"[bold]{escape(detail['id'])}[/bold] suite [bold]{escape(detail['suite'])}[/bold]: "
        f"{target}, dataset {escape(detail['dataset'])} {version(detail['dataset_version'])}; "
        f"{detail['status']}: {detail['done']}/{detail['items']} items, "
        f"{detail['errors']} failed, {detail['cached']} from the cache; "
        f"{when(detail['created_at'])}"
    )
    summary = detail["summary"]
    shown = table(
        "scorer",
        "scored",
        "errors",
        "mean",
        "95% interval",
        "pass rate",
        "95% interval ",
        right=("scored", "errors", "mean", "pass rate"),
    )
    for s in summary["scorers"]:
        mean, rate = s["mean"], s["pass_rate"]
        shown.add_row(
            escape(s["scorer"]),
            str(s["scored"]),
            str(s["errors"]),
            "" if mean is None else f"{mean:.3f}",
            _interval(s["mean_interval"], percent=False),
            "" if rate is None else f"{rate:.1%}",
            _interval(s["pass_rate_interval"], percent=True),
        )
    out.print(shown)
    out.print("intervals: mean, BCa bootstrap; pass rate, Wilson score")
    for s in summary["scorers"]:
        judged = s.get("judge_consistency")
        if judged:
            out.print(
                f"judge {escape(s['scorer'])}: {judged['repeats']} repeats of "
                f"{judged['items']} items, mean agreement {judged['mean_agreement']:.2f} "
                f"({judged['unanimous_share']:.0%} unanimous), spread mean "
                f"{judged['mean_spread']:.3f}, largest {judged['max_spread']:.3f}"
            )
    latency = summary["latency_ms"]
    if latency.get("p50") is not None:
        out.print(
            f"latency p50 {latency['p50']:.0f} ms, p95 {latency['p95']:.0f} ms; tokens "
            f"{summary['input_tokens']} in, {summary['output_tokens']} out"
        )
    failed = summary["failed_items"]
    if failed:
        shown_ids = ", ".join(escape(i) for i in failed[:10])
        more = f" and {len(failed) - 10} more" if len(failed) > 10 else ""
        out.print(f"[red]failed items[/red]: {shown_ids}{more}")


def _number(value: Any, spec: str) -> str:
    """A statistic, or "n/a" where there was none to compute (no paired items)."""
    return "n/a" if value is None else format(value, spec)


def print_comparison(result: Mapping[str, Any]) -> None:
    out = Console(highlight=False, soft_wrap=True)
    colour = {"pass": "green", "fail": "red", "no_verdict": "yellow"}[result["outcome"]]
    word = result["outcome"].replace("_", " ")
    errors = result["errors"]
    out.print(
        f"{escape(result['candidate'])} against {escape(result['baseline'])}: "
        f"[{colour}]{word}[/{colour}] ({result['items']} items; failed calls: "
        f"{errors['baseline']} baseline, {errors['candidate']} candidate)"
    )
    shown = table(
        "scorer",
        "verdict",
        "n",
        "baseline",
        "candidate",
        "difference (95% interval)",
        "p (Holm)",
        "detectable drop",
        "pass→fail / fail→pass",
        right=("n", "baseline", "candidate", "p (Holm)", "detectable drop"),
    )
    for s in result["scorers"]:
        verdict = "too little data" if s["verdict"] == "too_little_data" else s["verdict"]
        ends = " to ".join(_number(end, "+.3f") for end in s["interval"])
        shown.add_row(
            escape(s["scorer"]),
            verdict.replace("_", " "),
            str(s["n"]),
            _number(s["baseline_mean"], ".3f"),
            _number(s["candidate_mean"], ".3f"),
            f"{_number(s['difference'], '+.3f')} ({ends})",
            _number(s["p_adjusted"], ".3g"),
            _number(s["detectable_drop"], ".3f"),
            f"{len(s['pass_to_fail'])} / {len(s['fail_to_pass'])}",
        )
    out.print(shown)
    methods = sorted({s["method"] for s in result["scorers"]})
    for method in methods:
        out.print(f"method: {escape(method)}")
    for reason in result["reasons"]:
        out.print(f"- {escape(reason)}")
    if result["regressions"]:
        listed = ", ".join(escape(i) for i in result["regressions"][:20])
        more = len(result["regressions"]) - 20
        out.print(
            f"[red]pass → fail[/red] (read these first): {listed}"
            + (f" and {more} more" if more > 0 else "")
        )


def report_format(path: Path | None) -> report.Format | None:
    if path is None:
        return None
    try:
        return report.format_of(path)
    except ValueError as exc:
        raise fail(str(exc)) from None


def write_report(path: Path, text: str, quiet: bool) -> None:
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise fail(f"{path}: cannot write the report: {exc.strerror}") from None
    if not quiet:
        Console(stderr=True, highlight=False).print(f"report written to {escape(str(path))}")
