"""Every command the README shows runs, with tiny parameters (pyperf's test_examples idea).

Commands are the ``$ ...`` lines of the README's ```console blocks. Benchmark commands get tiny
sizes appended (argparse keeps the last value); commands that cannot run here are listed in
``NOT_RUN`` with the reason and the test that covers them instead.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from pathlib import Path

import pytest

from tests.conftest import need
from tests.test_brokers import GET_RABBITMQ, amqp_reachable

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"

#: Appended to every benchmark command: small enough for seconds, big enough to measure.
TINY = "--io-jobs 4 --cpu-jobs 20 --repeat 1 --warmup 0 --latency-ms 10 --quiet"
#: The same for ``jobbench overhead`` (``make bench-overhead``), whose sizes are its own.
TINY_OVERHEAD = (
    "--repeat 1 --warmup 0 --noop-jobs 30 --noop-messages 5 --enqueue-jobs 200 "
    "--capture-jobs 5 --memory-jobs 20,60 --no-events --quiet"
)

#: Commands not run here, each with why and where it is covered instead.
NOT_RUN = {
    "make test": "this is the command running this test",
    "make flower": "serves until stopped: tests/test_flower_browser.py runs Flower for real",
    "make up": "needs a Docker engine: tests/test_compose.py runs every service natively",
    "make down": "needs a Docker engine",
    "make bench-compose": "needs a Docker engine: tests/test_compose.py mirrors it natively",
    "make bench-hosts": "builds network namespaces for minutes: tests/test_hosts.py covers it",
    "docker compose": "needs a Docker engine: tests/test_compose.py validates the file",
    "echo": "writes .env for compose into the checkout",
    "curl": "needs Flower running: tests/test_flower_browser.py checks /api/workers",
    "export": "sets up a shell on a worker machine of a real deployment",
    "redis-server": "the Redis of a real deployment: tests/test_secure.py runs a private one",
    "celery -A": "a worker serves until stopped: tests/test_celery_pools.py starts this command",
}

#: Commands that need something this machine cannot be: checked before NOT_RUN's prefixes.
NOT_RUN_IF = {
    "--external-workers": "needs workers started elsewhere: tests/test_external_workers.py",
    "10.0.0.5": "names a machine of a real deployment (never a target from here)",
}

#: Services a command may name that jobbench cannot embed: its URL pattern, name, check, and how
#: to get one.
#: A command naming one that does not answer is skipped with that reason (failed under CI).
NEEDS_SERVICE = [(r"amqp://\S+", "RabbitMQ", amqp_reachable, GET_RABBITMQ)]

#: Subcommands that read a stored run: they get a tiny run of their own first.
READS_RUNS = ("report", "history", "compare", "verify")

#: ``VAR=value`` words before a command.
ENV_WORD = re.compile(r"^[A-Z_][A-Z0-9_]*=\S*$")


def readme_commands() -> list[str]:
    """``$ `` lines of the console blocks, continuation lines (ending in a backslash) joined."""
    text = README.read_text(encoding="utf-8")
    commands: list[str] = []
    for block in re.findall(r"```console\n(.*?)```", text, flags=re.S):
        joining = False
        for line in block.splitlines():
            if joining:
                commands[-1] = f"{commands[-1][:-1].rstrip()} {line.strip()}"
            elif line.startswith("$ "):
                commands.append(line[2:].strip())
            else:
                continue
            joining = commands[-1].endswith("\\")
    return commands


def test_readme_gives_the_two_setup_commands() -> None:
    commands = readme_commands()
    assert commands[:2] == ["make bench-celery", "make test"]


def shrink(command: str, out: Path) -> str:
    """The command with tiny sizes, its results under ``out``."""
    tiny = f"{TINY} --out {shlex.quote(str(out))}"
    if "bench-overhead" in command or "jobbench overhead" in command:
        tiny = f"{TINY_OVERHEAD} --out {shlex.quote(str(out))}"
        if command.startswith("make "):
            return f'{command} ARGS="{tiny}"'
        return f"{command} {tiny}"
    if command.startswith("make bench-") and "bench-overhead" not in command:
        m = re.search(r'ARGS="([^"]*)"', command)
        args = f"{m.group(1)} {tiny}" if m else tiny
        base = command[: m.start()].strip() if m else command
        return f'{base} ARGS="{args}"'
    if "jobbench bench" in command:
        return f"{command} {tiny}"
    return command


@pytest.mark.parametrize("command", readme_commands())
def test_readme_command_runs(command: str, tmp_path: Path) -> None:
    words = re.split(r"\s+#\s", command)[0].split()
    while words and ENV_WORD.match(words[0]):
        words.pop(0)
    for needle, why in NOT_RUN_IF.items():
        if needle in command:
            pytest.skip(why)
    for n in (2, 1):
        if " ".join(words[:n]) in NOT_RUN:
            pytest.skip(NOT_RUN[" ".join(words[:n])])
    for pattern, service, answers, how in NEEDS_SERVICE:
        for url in re.findall(pattern, command):
            where = url.rpartition("@")[2].rstrip("/")
            need(answers(url), f"no {service} at {where} for this command: {how}")
    out = tmp_path / "results"
    cmd = shrink(command, out)
    env = {**os.environ, "PATH": f"{ROOT / '.venv' / 'bin'}:{os.environ['PATH']}"}
    if words[:1] == ["jobbench"] and len(words) > 1 and words[1] in READS_RUNS:
        tiny_run = f"jobbench bench --models sequential --workloads cpu {TINY} --out {out}"
        subprocess.run(tiny_run, shell=True, cwd=ROOT, env=env, check=True, timeout=120)
        cmd = f"{cmd} --out {shlex.quote(str(out))}"
    proc = subprocess.run(
        cmd, shell=True, cwd=ROOT, env=env, capture_output=True, text=True, timeout=170
    )
    assert proc.returncode == 0, f"{cmd}\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
    if "bench" in cmd and "--help" not in cmd and "overhead" not in cmd:
        assert (tmp_path / "results" / "latest" / "results.json").exists()
