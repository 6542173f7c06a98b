"""The servers a run starts: the mock upstream, CPU spinners, trimtab (one process or
`serve --workers`, its configuration), LiteLLM's proxy (installed into its own venv) and
the Redis trimtab-w2 shares."""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from gateway_bench.processes import Target, free_port, pin_prefix, stop_process, tail
from gateway_bench.settings import (
    HOST,
    LITELLM_KEY,
    LITELLM_VENV,
    LOGS,
    MOCK_SCRIPT,
    MODEL,
    SLOW_SUFFIX,
    TRIMTAB_KEY,
    W2,
    SetupError,
    log,
)
from trimtab.testing.redis_server import RedisServer
from trimtab.testing.servers import ServerStartError, ServerUnavailable


def start_mock(
    cpu: int | None,
    gap_ms: float,
    slow_gap_ms: float,
    reply_bytes: int = 0,
    logs: Path = LOGS,
) -> tuple[subprocess.Popen[bytes], int]:
    log_path = logs / "mock.log"
    cmd = [
        *pin_prefix(cpu),
        sys.executable,
        str(MOCK_SCRIPT),
        "--host",
        HOST,
        "--port",
        "0",
        "--stream-gap-ms",
        str(gap_ms),
        "--slow-gap-ms",
        str(slow_gap_ms),
        "--reply-bytes",
        str(reply_bytes),
    ]
    err = log_path.open("wb")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, start_new_session=True)
    assert proc.stdout is not None
    line = proc.stdout.readline().decode().strip()
    if not line.startswith("READY "):
        stop_process(proc, 2)
        raise SetupError(f"mock upstream did not start: {line!r}\n{tail(log_path)}")
    return proc, int(line.split()[1])


SPIN_CODE = """
import os
os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
while True:
    pass
"""


def start_spinners(cpus: Sequence[int]) -> list[subprocess.Popen[bytes]]:
    """One SCHED_IDLE busy loop per CPU, so idle vCPUs never halt.

    On a VM whose idle vCPUs halt (cpuidle haltpoll with polling off, as here), waking a
    halted vCPU costs the hypervisor a reschedule: tens of microseconds, sometimes
    milliseconds. A SCHED_IDLE task yields to any normal task at once, so it keeps the vCPU
    running without taking CPU from the benchmark."""
    return [
        subprocess.Popen(
            ["taskset", "-c", str(cpu), sys.executable, "-c", SPIN_CODE],
            start_new_session=True,
        )
        for cpu in cpus
    ]


# --guardrails: the gateway's policy for every request, as docs/guardrails.md shows it: PII
# redacted both ways (streams too, one word late), injection blocked, a deny pattern each way
GUARDRAILS = (
    "guardrails:\n"
    "  mode: enforce\n"
    "  input:\n"
    "    pii: {action: redact}\n"
    "    injection: {action: block}\n"
    '    deny: ["(?i)ignore (all|previous) instructions"]\n'
    "  output:\n"
    "    pii: {action: redact}\n"
    '    deny: ["(?i)as an ai language model"]\n'
)


def trimtab_config(
    tmpdir: Path,
    mock_port: int,
    journal: bool = True,
    state_url: str | None = None,
    processes: int = 1,
    guardrails: bool = False,
) -> str:
    """The gateway's configuration; with ``state_url`` rate limits and budgets live in that
    Redis, shared by ``processes`` processes (as `serve --workers N` requires), else in the
    process."""
    state = (
        ""
        if state_url is None
        else "# limits and budgets shared by the workers\n"
        f'state: {{url: "{state_url}", processes: {processes}}}\n'
    )
    return (
        f'store: {{url: "sqlite:///{tmpdir}/bench.db"}}\n'
        "providers:\n"
        f'  mock: {{kind: openai, base_url: "http://{HOST}:{mock_port}/v1", api_key: sk-bench}}\n'
        "models:\n"
        f"  {MODEL}: {{provider: mock, model: mock-1, "
        "pricing: {input_per_mtok: 0.15, output_per_mtok: 0.6}}\n"
        "  # only for the one-off check that streams are forwarded chunk by chunk\n"
        f"  {MODEL}{SLOW_SUFFIX}: {{provider: mock, model: mock-1{SLOW_SUFFIX}}}\n"
        "keys:\n"
        f"  - {{key: {TRIMTAB_KEY}, tenant: bench, role: admin}}\n"
        "# one rate limit and one budget, as users run it: checked on every request, never hit\n"
        'limits: [{scope: "key:*", rpm: 100000000}]\n'
        'budgets: [{scope: "tenant:bench", period: day, usd: 1000000, on_exceed: block}]\n'
        "# full request logging: bodies recorded; the spill file only fills if the store lags\n"
        f'telemetry: {{record_bodies: true, spill_path: "{tmpdir}/spill.jsonl", '
        f"journal: {'true' if journal else 'false'}}}\n"
        f"{state}"
        f"{GUARDRAILS if guardrails else ''}"
    )


def start_trimtab(
    exe: str,
    tmpdir: Path,
    mock_port: int,
    cpu: int | str | None,
    journal: bool = True,
    *,
    name: str = "trimtab",
    workers: int = 1,
    state_url: str | None = None,
    guardrails: bool = False,
    logs: Path = LOGS,
) -> Target:
    """Start `trimtab serve` (with ``workers`` > 1: a supervisor and its workers) in a
    directory of its own under ``tmpdir``: its config, SQLite db and spill files."""
    port = free_port()
    workdir = tmpdir / name
    workdir.mkdir(parents=True, exist_ok=True)
    cfg = workdir / "trimtab.yaml"
    cfg.write_text(trimtab_config(workdir, mock_port, journal, state_url, workers, guardrails))
    log_path = logs / f"{name}.log"
    cmd = [
        *pin_prefix(cpu),
        exe,
        "serve",
        "--config",
        str(cfg),
        "--host",
        HOST,
        "--port",
        str(port),
        *(["--workers", str(workers)] if workers > 1 else []),
    ]
    t = Target(
        name=name,
        base_url=f"http://{HOST}:{port}/v1",
        auth=f"Bearer {TRIMTAB_KEY}",
        model=MODEL,
        log_path=log_path,
        cmd=cmd,
        required_header="x-trimtab-request-id",
        overhead_header="x-trimtab-overhead-ms",
        workdir=workdir,
    )
    out = log_path.open("wb")
    env = dict(os.environ)
    t.proc = subprocess.Popen(
        cmd,
        stdout=out,
        stderr=subprocess.STDOUT,
        cwd=workdir,
        env=env,
        start_new_session=True,
    )
    return t


def ensure_litellm(spec: str, logs: Path = LOGS) -> Path:
    """Create bench/.venv-litellm with LiteLLM's proxy if it is not there yet."""
    exe = LITELLM_VENV / "bin" / "litellm"
    if exe.exists():
        return exe
    log(f"installing {spec!r} into {LITELLM_VENV} (one time, ~1 minute) ...")
    py = shutil.which("python3") or sys.executable
    install_log = logs / "litellm-install.log"
    with install_log.open("wb") as out:
        steps = [
            [py, "-m", "venv", str(LITELLM_VENV)],
            [str(LITELLM_VENV / "bin" / "pip"), "install", "-q", spec],
        ]
        for step in steps:
            rc = subprocess.run(step, stdout=out, stderr=subprocess.STDOUT).returncode
            if rc != 0:
                raise SetupError(
                    f"LiteLLM install failed ({shlex.join(step)} -> {rc}); see {install_log}\n"
                    f"{tail(install_log, 20)}"
                )
    if not exe.exists():
        raise SetupError(f"LiteLLM installed but {exe} is missing")
    return exe


def litellm_config(mock_port: int) -> str:
    return (
        "model_list:\n"
        f"  - model_name: {MODEL}\n"
        "    litellm_params:\n"
        "      model: openai/mock-1\n"
        f"      api_base: http://{HOST}:{mock_port}/v1\n"
        "      api_key: sk-bench\n"
        f"  - model_name: {MODEL}{SLOW_SUFFIX}\n"
        "    litellm_params:\n"
        f"      model: openai/mock-1{SLOW_SUFFIX}\n"
        f"      api_base: http://{HOST}:{mock_port}/v1\n"
        "      api_key: sk-bench\n"
        "litellm_settings:\n"
        "  telemetry: false\n"
        "  set_verbose: false\n"
        "general_settings:\n"
        f"  master_key: {LITELLM_KEY}\n"
    )


def start_litellm(
    exe: Path, tmpdir: Path, mock_port: int, cpu: int | None, logs: Path = LOGS
) -> Target:
    port = free_port()
    cfg = tmpdir / "litellm.yaml"
    cfg.write_text(litellm_config(mock_port))
    log_path = logs / "litellm.log"
    cmd = [
        *pin_prefix(cpu),
        str(exe),
        "--config",
        str(cfg),
        "--host",
        HOST,
        "--port",
        str(port),
        "--num_workers",
        "1",
    ]
    env = {k: v for k, v in os.environ.items() if not k.upper().endswith("_PROXY")}
    env.update(
        {
            # keep LiteLLM off the network: use the bundled cost map, no telemetry
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",
            "LITELLM_TELEMETRY": "False",
            "LITELLM_LOG": "ERROR",
            "NO_PROXY": "*",
            "DATABASE_URL": "",
        }
    )
    env.pop("DATABASE_URL")
    t = Target(
        name="litellm",
        base_url=f"http://{HOST}:{port}/v1",
        auth=f"Bearer {LITELLM_KEY}",
        model=MODEL,
        log_path=log_path,
        cmd=cmd,
    )
    out = log_path.open("wb")
    t.proc = subprocess.Popen(
        cmd, stdout=out, stderr=subprocess.STDOUT, cwd=tmpdir, env=env, start_new_session=True
    )
    return t


def start_redis(cpus: str | None) -> RedisServer:
    """A throwaway redis-server (no persistence) on a free loopback port, on ``cpus``."""
    try:
        server = RedisServer().start()
    except (ServerUnavailable, ServerStartError) as e:
        raise SetupError(f"{W2} needs redis-server for its shared state: {e}") from e
    if cpus is not None:  # not on this process's CPU alone, which it inherited
        for task in Path(f"/proc/{server.pid}/task").iterdir():  # every thread
            with contextlib.suppress(OSError, ValueError):
                os.sched_setaffinity(int(task.name), {int(c) for c in cpus.split(",")})
    return server
