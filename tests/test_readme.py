"""Every command the README and the docs show runs, with tiny parameters (pyperf's test_examples
idea), and the docs hang together: the README stays short and every relative link resolves.

Commands are the ``$ ...`` lines of the ```console blocks of README.md and of every page in
``docs/``. Benchmark commands get tiny sizes appended (argparse keeps the last value); commands
that read a stored run get one tiny run, shared by the module; commands that cannot run here are
listed in ``NOT_RUN`` with the reason and the test that covers them instead.
"""

from __future__ import annotations

import ast
import os
import re
import shlex
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from producer.cli import COMMANDS
from tests.conftest import need
from tests.test_brokers import GET_RABBITMQ, amqp_reachable

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS_DIR = ROOT / "docs"
#: Every page whose commands must run: the README first, then docs/ in name order.
PAGES = [README, *sorted(DOCS_DIR.glob("*.md"))]
#: The README is the front door: what, the two commands, one picture, main options, links.
README_MAX_LINES = 250

#: Appended to every benchmark command: small enough for seconds, big enough to measure.
TINY = "--io-jobs 4 --cpu-jobs 20 --repeat 1 --warmup 0 --latency-ms 10 --quiet"
#: The same for ``jobbench perf`` (``make bench-perf``) and ``jobbench calibrate``.
TINY_PERF = "--runs 1 --repeat 1 --io-jobs 4 --cpu-jobs 20 --quiet"
TINY_CALIBRATE = "--repeat 1 --io-jobs 4 --cpu-jobs 20 --latency-ms 10 --quiet"
#: The same for ``jobbench overhead`` (``make bench-overhead``), whose sizes are its own.
TINY_OVERHEAD = (
    "--repeat 1 --warmup 0 --noop-jobs 30 --noop-messages 5 --enqueue-jobs 200 "
    "--capture-jobs 5 --memory-jobs 20,60 --no-events --quiet"
)

#: Appended to every ``jobbench sweep`` command: one repeat, no warm-up; a built-in sweep is also
#: cut to two small values (the last ``--vary`` wins). tests/test_sweep_run.py checks the outputs.
TINY_SWEEP = "--repeat 1 --warmup 0 --quiet"
TINY_SWEEPS = {
    "granularity": "--vary cpu_n=1000,10000 --cpu-work 20000",
    "io-concurrency": "--vary io_concurrency=1,4 --latency-ms 10",
    "cpu-workers": "--vary processes=1,2 --cpu-jobs 20",
}

#: Commands not run here, each with why and where it is covered instead.
NOT_RUN = {
    "make test": "this is the command running this test",
    "make test-fast": "the unit tier of `make test`, which is the command running this test",
    "make test-faults": "the faults tier of `make test`: tests/test_faults.py",
    "make flower": "serves until stopped: tests/test_flower_browser.py runs Flower for real",
    "make up": "needs a Docker engine: tests/test_compose.py runs every service natively",
    "make down": "needs a Docker engine",
    "make bench-compose": "needs a Docker engine: tests/test_compose.py mirrors it natively",
    "make bench-hosts": "builds network namespaces for minutes: tests/test_hosts.py covers it",
    "make images-local": "builds base images with debootstrap and a Docker engine: "
    "tests/test_compose_docker.py (make test-docker) runs on them",
    "make test-docker": "the docker tier, run by CI after make test: tests/test_compose_docker.py",
    "docker compose": "needs a Docker engine: tests/test_compose.py validates the file",
    "echo": "writes .env for compose into the checkout",
    "curl": "needs Flower running: tests/test_flower_browser.py checks /api/workers",
    "export": "sets up a shell on a worker machine of a real deployment",
    "redis-server": "the Redis of a real deployment: tests/test_secure.py runs a private one",
    "celery -A": "a worker serves until stopped: tests/test_celery_pools.py starts this command",
    "ip netns": "builds a network namespace as root: `make test-fresh` (tests/fresh_machine.sh) "
    "runs these steps, with checks",
    "jobbench target": "serves until stopped: tests/test_compose.py starts the target service's "
    "`jobbench target`, tests/test_target.py measures it",
}

#: Commands that need something this machine cannot be: checked before NOT_RUN's prefixes.
NOT_RUN_IF = {
    "--external-workers": "needs workers started elsewhere: tests/test_external_workers.py",
    "10.0.0.5": "names a machine of a real deployment (never a target from here)",
    "jobbench redis stop": "would stop the embedded store the rest of the suite may be using: "
    "tests/test_embedded_redis.py::test_redis_status_and_stop runs it on a private store",
}

#: Services a command may name that jobbench cannot embed: its URL pattern, name, check, and how
#: to get one. A command naming one that does not answer is skipped with that reason (failed
#: under CI).
NEEDS_SERVICE = [(r"amqp://\S+", "RabbitMQ", amqp_reachable, GET_RABBITMQ)]

#: Make targets that run ``jobbench bench`` and so must write results.json under ``--out``.
BENCH_TARGETS = ("bench-celery", "bench-inprocess", "bench-perf")

#: Subcommands that read a stored run: they get the module's tiny run.
READS_RUNS = ("report", "history", "compare", "verify")

#: ``VAR=value`` words before a command.
ENV_WORD = re.compile(r"^[A-Z_][A-Z0-9_]*=\S*$")

#: A fenced block, possibly indented (inside a list item): its indent, language and body.
FENCE = re.compile(r"^([ \t]*)```([\w-]*)[ \t]*\n(.*?)^\1```[ \t]*$", flags=re.S | re.M)
#: Languages a fenced block may have: commands go in ``console`` blocks, where the test finds
#: them; ``python`` blocks are examples that must at least parse.
FENCE_LANGUAGES = frozenset({"console", "python"})

#: ``[text](target)`` and ``![alt](target)``, an optional "title" after the target.
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


def rel(page: Path) -> str:
    return page.relative_to(ROOT).as_posix()


def fenced_blocks(page: Path) -> Iterator[tuple[str, str]]:
    """(language, body without the block's indent) of every fenced block of ``page``."""
    for indent, language, body in FENCE.findall(page.read_text(encoding="utf-8")):
        lines = body.split("\n")
        yield language, "\n".join(line.removeprefix(indent) for line in lines)


def page_commands(page: Path) -> list[str]:
    """``$ `` lines of the console blocks, continuation lines (ending in a backslash) joined."""
    commands: list[str] = []
    for language, block in fenced_blocks(page):
        if language != "console":
            continue
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


def readme_commands() -> list[str]:
    return page_commands(README)


def docs_commands() -> list[tuple[str, str]]:
    """(page, command) of every docs/ command the README does not already run, each once."""
    seen = set(readme_commands())
    found: list[tuple[str, str]] = []
    for page in PAGES[1:]:
        for command in page_commands(page):
            if command not in seen:
                seen.add(command)
                found.append((rel(page), command))
    return found


def test_readme_gives_the_two_setup_commands() -> None:
    commands = readme_commands()
    assert commands[:2] == ["make bench-celery", "make test"]


def test_readme_is_a_front_door() -> None:
    n_lines = len(README.read_text(encoding="utf-8").splitlines())
    assert n_lines <= README_MAX_LINES, f"README.md: {n_lines} lines, at most {README_MAX_LINES}"
    assert len([p for p in PAGES if p.parent == DOCS_DIR]) >= 5, "the manual lives in docs/"


def test_every_doc_page_is_found() -> None:
    """The docs test reads what the README links to: no page is out of its reach."""
    linked = {
        (README.parent / target).resolve()
        for target in LINK.findall(README.read_text(encoding="utf-8"))
        if target.startswith("docs/") and target.endswith(".md")
    }
    assert linked == {p.resolve() for p in PAGES[1:]}, "link every docs/ page from the README"


@pytest.mark.parametrize("page", PAGES, ids=rel)
def test_commands_only_in_console_blocks(page: Path) -> None:
    """A command shown any other way would escape the command tests."""
    for language, body in fenced_blocks(page):
        assert language in FENCE_LANGUAGES, f"{rel(page)}: a ```{language or '(bare)'} block"
        if language == "python":
            ast.parse(body)
    outside = FENCE.sub("", page.read_text(encoding="utf-8"))
    stray = re.findall(r"^\s*\$ .*", outside, flags=re.M)
    assert not stray, f"{rel(page)}: `$ ` lines outside a console block: {stray}"


def heading_anchors(page: Path) -> set[str]:
    """GitHub's anchors for the headings of ``page`` (fenced blocks left out)."""
    anchors: set[str] = set()
    text = FENCE.sub("", page.read_text(encoding="utf-8"))
    for heading in re.findall(r"^#{1,6}\s+(.+?)\s*#*$", text, flags=re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
        n, unique = 0, slug
        while unique in anchors:
            n += 1
            unique = f"{slug}-{n}"
        anchors.add(unique)
    return anchors


@pytest.mark.parametrize("page", PAGES, ids=rel)
def test_relative_links_resolve(page: Path) -> None:
    text = FENCE.sub("", page.read_text(encoding="utf-8"))
    links = LINK.findall(text)
    broken: list[str] = []
    for target in links:
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto:, ...
            continue
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists():
            broken.append(f"{target} (no such file)")
        elif anchor and dest.suffix == ".md" and anchor not in heading_anchors(dest):
            broken.append(f"{target} (no such heading)")
    assert not broken, f"{rel(page)}: broken links: {broken}"


def code_in(page: Path) -> str:
    """The code of ``page``: its inline code spans and its fenced blocks, one per line."""
    text = page.read_text(encoding="utf-8")
    blocks = [body for _, body in fenced_blocks(page)]
    return "\n".join([*re.findall(r"`([^`\n]+)`", FENCE.sub("", text)), *blocks])


def test_docs_name_real_make_targets_and_subcommands() -> None:
    """Every `make X` and `jobbench X` the docs write as code, inline or in a block, exists."""
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    targets = set(re.findall(r"^([a-zA-Z][\w-]*):", makefile, flags=re.M))
    subcommands = set(COMMANDS)
    for page in PAGES:
        code = code_in(page)
        for target in re.findall(r"(?:^|[\s(])make ([a-z][\w-]*)", code, flags=re.M):
            assert target in targets, f"{rel(page)}: `make {target}` is not a Makefile target"
        for sub in re.findall(r"(?:^|[\s(])jobbench ([a-z][\w-]*)", code, flags=re.M):
            assert sub in subcommands, f"{rel(page)}: `jobbench {sub}` is not a subcommand"


def shrink(command: str, out: Path) -> str:
    """The command with tiny sizes, its results under ``out``."""
    tiny = f"{TINY} --out {shlex.quote(str(out))}"
    own_sizes = {
        ("bench-overhead", "jobbench overhead"): TINY_OVERHEAD,
        ("bench-perf", "jobbench perf"): TINY_PERF,
        ("make calibrate", "jobbench calibrate"): TINY_CALIBRATE,
    }
    for names, sizes in own_sizes.items():
        if any(name in command for name in names):
            tiny = f"{sizes} --out {shlex.quote(str(out))}"
            if command.startswith("make "):
                return f'{command} ARGS="{tiny}"'
            return f"{command} {tiny}"
    if command.startswith("make bench-"):
        m = re.search(r'ARGS="([^"]*)"', command)
        args = f"{m.group(1)} {tiny}" if m else tiny
        base = command[: m.start()].strip() if m else command
        return f'{base} ARGS="{args}"'
    if "jobbench bench" in command:
        return f"{command} {tiny}"
    if "jobbench sweep" in command:
        words = command.split()
        name = words[words.index("sweep") + 1] if words[-1] != "sweep" else ""
        return f"{command} {TINY_SWEEPS.get(name, '')} {TINY_SWEEP} --out {shlex.quote(str(out))}"
    return command


def env() -> dict[str, str]:
    return {**os.environ, "PATH": f"{ROOT / '.venv' / 'bin'}:{os.environ['PATH']}"}


@pytest.fixture(scope="module")
def stored_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One tiny run, shared by every command that reads a stored run (``--out`` of it)."""
    out = tmp_path_factory.mktemp("stored") / "results"
    tiny_run = f"jobbench bench --models sequential --workloads cpu {TINY} --out {out}"
    subprocess.run(tiny_run, shell=True, cwd=ROOT, env=env(), check=True, timeout=120)
    assert (out / "latest" / "results.json").exists()
    return out


def run_documented(command: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """Run ``command`` as the docs show it, tiny; skip it with the reason when it cannot run."""
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
    if words[:1] == ["jobbench"] and len(words) > 1 and words[1] in READS_RUNS:
        stored: Path = request.getfixturevalue("stored_run")
        cmd = f"{cmd} --out {shlex.quote(str(stored))}"
    proc = subprocess.run(
        cmd, shell=True, cwd=ROOT, env=env(), capture_output=True, text=True, timeout=170
    )
    assert proc.returncode == 0, f"{cmd}\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
    benchmarks = words[:2] == ["jobbench", "bench"] or (
        words[:1] == ["make"] and len(words) > 1 and words[1] in BENCH_TARGETS
    )
    if benchmarks and "--help" not in words:
        assert (out / "latest" / "results.json").exists(), f"{cmd}: no results.json"


@pytest.mark.integration
@pytest.mark.parametrize("command", readme_commands())
def test_readme_command_runs(command: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    run_documented(command, tmp_path, request)


#: The manual's commands run in the slow tier (``make test-slow``, in CI): together they take
#: minutes, and the README's own commands (above) keep the front door checked in ``make test``.
@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.parametrize(
    ("page", "command"),
    docs_commands(),
    ids=[f"{p}: {re.split(r' +# ', c)[0]}" for p, c in docs_commands()],
)
def test_docs_command_runs(
    page: str, command: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    run_documented(command, tmp_path, request)
