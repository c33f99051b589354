"""docker-compose.yml under a real Docker engine: the ``docker`` tier (``make test-docker``).

tests/test_compose.py is the fast tier (the file validated, every service's command started
natively). Here Compose v2 builds the image and runs the stack itself, in one compose project of
this session's own (``jbtest<hex>``):

1. ``up --wait`` of redis, target, the three worker services and Flower, with ``worker-prefork``
   and ``worker-threads`` scaled to 2;
2. Flower's port, published on 127.0.0.1 only, answers ``/healthcheck`` and lists every worker
   node (one per replica) over basic auth; headless Chromium screenshots its Workers page;
3. ``make bench-compose`` with tiny sizes writes results.json into a host directory as a non-root
   user, with the schema of a native run, the scaled pools' jobs spread over both replicas
   (``jobs_per_host``), and ``jobbench verify`` exits 0 on the run;
4. faults mid-run: ``docker compose kill -s SIGKILL worker-threads`` and ``docker compose restart
   redis``; every job accounted for afterwards, redeliveries counted;
5. the RabbitMQ profile runs the same small bench with ``JOBBENCH_BROKER_URL`` on it;
6. ``down -v`` leaves no container, network or volume of the project (also torn down on failure).

Images: ``PYTHON_IMAGE``, ``REDIS_IMAGE``, ``RABBITMQ_IMAGE`` and ``WHEELHOUSE`` from the
environment (``make test-docker IMAGES=local`` sets the stand-ins ``make images-local`` built);
unset, the upstream images, which need a registry. ``JOBBENCH_FAULTS_REPORT=path`` appends each
fault's figures as a JSON line, as the native fault suite does.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from producer.services import free_port
from tests.conftest import need
from tests.test_flower_browser import SCREENSHOTS, chromium, page_shows

pytestmark = [pytest.mark.docker, pytest.mark.integration, pytest.mark.timeout(900)]

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = ROOT / "docker-compose.yml"
POOLS = ("prefork", "threads", "solo")
#: Replicas of the scaled pools: two of each, so a job can land on either.
SCALE = {"worker-prefork": 2, "worker-threads": 2}
#: The image's own non-root user (Dockerfile); the producer writes as it when the tests run as
#: root, as the invoking user otherwise (``make bench-compose`` passes ``id -u``).
IMAGE_UID = 10001
#: Seconds before an unacknowledged message goes back to its queue: short, so a killed worker's
#: jobs come back within the test; longer than any tiny job plus its prefetch wait.
VISIBILITY_TIMEOUT_S = 10
#: The stack's settings for the whole session (shell variables compose substitutes).
STACK_ENV = {
    "JOBBENCH_LATENCY_MS": "100",
    "PREFORK_CONCURRENCY": "2",
    "THREADS_CONCURRENCY": "4",
    "JOBBENCH_VISIBILITY_TIMEOUT_S": str(VISIBILITY_TIMEOUT_S),
    "COMPOSE_BAKE": "false",  # no buildx here; compose builds without it
}
#: A tiny bench: what a user would put in .env to try ``make bench-compose`` quickly.
TINY_RUN = {
    "JOBBENCH_IO_JOBS": "24",
    "JOBBENCH_CPU_JOBS": "200",
    "JOBBENCH_REPEAT": "1",
    "JOBBENCH_WARMUP": "0",
    "JOBBENCH_TIMEOUT_S": "120",
    # As the suite's own command-line runs (tests/conftest.py): no probe, no machine costs.
    "JOBBENCH_NO_PREDICT": "1",
}
#: The fault runs: threads on IO only, 400 requests in messages of 10 (1 s each), ~5 s on the
#: 8 threads. A fault must land mid-message, as in the native suite: a worker killed in the
#: millisecond between popping a message and recording it as unacknowledged loses it (kombu's
#: Redis transport; README "Known limits"). With one job per message the workers pop 80 times a
#: second and about one kill in four hit that window; with 10 they pop in waves a second apart,
#: and the fault lands ~0.3 s into one (the time docker compose takes to act).
FAULT_RUN = {**TINY_RUN, "JOBBENCH_MODELS": "celery_threads", "JOBBENCH_WORKLOADS": "io",
             "JOBBENCH_IO_JOBS": "400", "JOBBENCH_BATCH_SIZE": "10"}  # fmt: skip
#: Jobs started once every thread of the scaled pool is inside a message (a message's jobs
#: count as started when it starts): the moment that is "mid-run".
THREADS_BUSY = (
    SCALE["worker-threads"]
    * int(STACK_ENV["THREADS_CONCURRENCY"])
    * int(FAULT_RUN["JOBBENCH_BATCH_SIZE"])
)
#: Seconds any wait in this file may take before the test fails instead of hanging.
DEADLINE_S = 120.0
#: The same environment variable as tests/test_faults.py.
REPORT_ENV = "JOBBENCH_FAULTS_REPORT"
#: Prefixes of host variables that must not leak into compose's substitution (the image
#: variables, PYTHON_IMAGE and the like, do pass).
FOREIGN_ENV = ("COMPOSE_", "JOBBENCH_", "FLOWER_", "CELERY_", "RABBITMQ_USER", "RABBITMQ_PASS",
               "PREFORK_", "THREADS_")  # fmt: skip


def engine_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    info = subprocess.run(["docker", "info"], capture_output=True, timeout=30)
    version = subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=30)
    return info.returncode == 0 and version.returncode == 0


@dataclass
class Stack:
    """One compose project of this session: its name, environment and where results go."""

    project: str
    env: dict[str, str]
    env_file: Path
    results_dir: Path
    uid: int
    gid: int
    flower_port: int
    credentials: tuple[str, str]

    @property
    def compose_cmd(self) -> list[str]:
        # An empty --env-file: a .env in the checkout (a user's settings) stays out of the test.
        return ["docker", "compose", "--project-directory", str(ROOT), "-f", str(COMPOSE_FILE),
                "--env-file", str(self.env_file), "-p", self.project]  # fmt: skip

    def compose(
        self,
        *args: str,
        check: bool = True,
        timeout_s: float = 600,
        env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [*self.compose_cmd, *args], env={**self.env, **(env or {})}, cwd=ROOT,
            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout_s,
        )  # fmt: skip
        if check and proc.returncode != 0:
            pytest.fail(f"docker compose {' '.join(args)} -> {proc.returncode}:\n"
                        f"{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")  # fmt: skip
        return proc

    def bench_command(self) -> list[str]:
        """``make bench-compose`` on this project, writing into ``results_dir`` as ``uid``."""
        compose = " ".join(self.compose_cmd)
        return ["make", "-s", "-C", str(ROOT), "bench-compose", f"COMPOSE={compose}",
                f"JOBBENCH_UID={self.uid}", f"JOBBENCH_GID={self.gid}"]  # fmt: skip

    def bench_env(self, run: dict[str, str]) -> dict[str, str]:
        return {**self.env, **run, "JOBBENCH_RESULTS_DIR": str(self.results_dir)}

    def start_bench(self, run: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
        """``make bench-compose`` in the background, in a process group of its own (so that
        ``stop_bench`` also ends the ``docker compose run`` it started), output to ``log``."""
        with open(log, "wb") as out:
            return subprocess.Popen(
                self.bench_command(), env=self.bench_env(run), cwd=ROOT, stdin=subprocess.DEVNULL,
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip

    @staticmethod
    def stop_bench(proc: subprocess.Popen[bytes]) -> None:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    def bench(self, run: dict[str, str]) -> tuple[str, dict[str, Any]]:
        """Run the producer to completion; returns (run id, results.json)."""
        before = set(self.results_dir.iterdir())
        log = self.results_dir.parent / f"bench-{uuid.uuid4().hex[:6]}.log"
        proc = self.start_bench(run, log)
        try:
            rc = proc.wait(timeout=DEADLINE_S * 3)
        finally:
            self.stop_bench(proc)
        assert rc == 0, log.read_text(errors="replace")[-4000:]
        return self.new_run(before)

    def new_run(self, before: set[Path]) -> tuple[str, dict[str, Any]]:
        (run_dir,) = [
            p for p in set(self.results_dir.iterdir()) - before if p.is_dir() and not p.is_symlink()
        ]
        return run_dir.name, json.loads((run_dir / "results.json").read_text())

    def verify(self, run_id: str) -> tuple[int, dict[str, Any]]:
        """``jobbench verify RUN --format json`` in a producer container on the stack's network."""
        proc = self.compose(
            "--profile", "bench", "run", "--rm", "--no-deps", "-T", "producer",
            "jobbench", "verify", run_id, "--format", "json",
            check=False, env={"JOBBENCH_RESULTS_DIR": str(self.results_dir),
                              "JOBBENCH_UID": str(self.uid), "JOBBENCH_GID": str(self.gid)},
        )  # fmt: skip
        assert proc.returncode in (0, 1), proc.stderr[-3000:]
        return proc.returncode, json.loads(proc.stdout)

    def redis_cli(self, *args: str) -> str:
        return self.compose("exec", "-T", "redis", "redis-cli", "--raw", *args).stdout.strip()

    def containers(self, service: str) -> list[dict[str, Any]]:
        ids = self.compose("ps", "-a", "-q", service).stdout.split()
        if not ids:
            return []
        out = subprocess.run(["docker", "inspect", *ids], capture_output=True, text=True,
                             check=True)  # fmt: skip
        return list(json.loads(out.stdout))

    def nodes(self) -> set[str]:
        """The Celery node name of every worker replica: ``<pool>@<container hostname>``."""
        return {f"{pool}@{c['Config']['Hostname']}" for pool in POOLS
                for c in self.containers(f"worker-{pool}")}  # fmt: skip

    def logs(self, *services: str, tail: int = 40) -> str:
        """The last lines of the services' logs (one-off producer runs too), for a failure."""
        got = self.compose("logs", "--no-color", "--timestamps", "--tail", str(tail), *services,
                           check=False)  # fmt: skip
        runs = [subprocess.run(["docker", "logs", "--timestamps", "--tail", str(tail), c],
                               capture_output=True, text=True)
                for c in self.oneoff_containers()]  # fmt: skip
        return "\n".join([got.stdout, *(r.stdout + r.stderr for r in runs)])

    def oneoff_containers(self) -> list[str]:
        """Containers of ``docker compose run`` (the producer) in this project."""
        label = f"label=com.docker.compose.project={self.project}"
        listed = subprocess.run(["docker", "ps", "-a", "-q", "--filter", label, "--filter",
                                 "label=com.docker.compose.oneoff=True"],
                                capture_output=True, text=True)  # fmt: skip
        return listed.stdout.split()

    def leftovers(self) -> dict[str, list[str]]:
        label = f"label=com.docker.compose.project={self.project}"
        found = {}
        for kind, cmd in (
            ("containers", ["docker", "ps", "-a", "-q"]),
            ("networks", ["docker", "network", "ls", "-q"]),
            ("volumes", ["docker", "volume", "ls", "-q"]),
        ):
            listed = subprocess.run([*cmd, "--filter", label], capture_output=True, text=True,
                                    check=True)  # fmt: skip
            found[kind] = listed.stdout.split()
        return found

    def down(self) -> subprocess.CompletedProcess[str]:
        return self.compose("--profile", "bench", "--profile", "rabbitmq", "down", "-v",
                            "--remove-orphans", "--timeout", "20", check=False)  # fmt: skip


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    """The stack built and up (scaled), for every test of this module; ``down -v`` at the end,
    whatever happened."""
    need(engine_answers(), "no Docker engine with Compose v2 answers: docker/engine.sh start")
    workdir = Path(tempfile.mkdtemp(prefix="jobbench-docker-"))
    results_dir = workdir / "results"
    results_dir.mkdir()
    uid, gid = (IMAGE_UID, IMAGE_UID) if os.geteuid() == 0 else (os.getuid(), os.getgid())
    if os.geteuid() == 0:
        os.chown(results_dir, uid, gid)
    env_file = workdir / "empty.env"
    env_file.touch()
    credentials = ("jobbench", uuid.uuid4().hex)
    flower_port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(FOREIGN_ENV)}
    env.update(STACK_ENV, FLOWER_PORT=str(flower_port), FLOWER_BASIC_AUTH=":".join(credentials))
    s = Stack(project=f"jbtest{uuid.uuid4().hex[:8]}", env=env, env_file=env_file,
              results_dir=results_dir, uid=uid, gid=gid, flower_port=flower_port,
              credentials=credentials)  # fmt: skip
    try:
        built = s.compose("--profile", "bench", "build", "producer", check=False)
        assert built.returncode == 0, (
            f"the image does not build (no registry? make images-local, then make test-docker "
            f"IMAGES=local):\n{built.stdout[-2000:]}\n{built.stderr[-3000:]}"
        )
        scale = [a for svc, n in SCALE.items() for a in ("--scale", f"{svc}={n}")]
        s.compose("up", "-d", "--wait", "--no-build", *scale)
        yield s
    finally:
        if s.down().returncode != 0:  # once more: a container may have been mid-start
            s.down()
        shutil.rmtree(workdir, ignore_errors=True)


def flower(stack: Stack, path: str, auth: bool = True) -> httpx.Response:
    url = f"http://127.0.0.1:{stack.flower_port}/{path}"
    return httpx.get(url, auth=stack.credentials if auth else None, timeout=10)


def wait_for(check: Any, what: str, timeout_s: float = DEADLINE_S) -> Any:
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except (httpx.HTTPError, ValueError) as exc:  # not up yet, or half an answer
            last = exc
        else:
            if last:
                return last
        time.sleep(0.5)
    pytest.fail(f"timed out after {timeout_s:.0f} s waiting for {what} (last: {last!r})")


# --- the stack, Flower and the bench ------------------------------------------------------------


def test_stack_builds_and_comes_up_healthy_and_scaled(stack: Stack) -> None:
    for pool in POOLS:
        service = f"worker-{pool}"
        found = stack.containers(service)
        assert len(found) == SCALE.get(service, 1), service
        for c in found:
            assert c["State"]["Health"]["Status"] == "healthy", (service, c["State"])
            assert c["Config"]["User"] == "jobbench", "workers run as the image's non-root user"
    (redis_c,) = stack.containers("redis")
    assert redis_c["Config"]["Image"] == stack.env.get("REDIS_IMAGE", "redis:7-alpine")
    assert stack.redis_cli("CONFIG", "GET", "maxmemory-policy").split() == [
        "maxmemory-policy", "noeviction"]  # fmt: skip
    # Container DNS: the target answers by its service name from a worker.
    probe = (
        "import urllib.request; print(urllib.request.urlopen('http://target:8080/health').status)"
    )
    got = stack.compose("exec", "-T", "worker-solo", "python", "-c", probe).stdout.strip()
    assert got == "200"


def test_flower_on_loopback_lists_every_worker_node_in_the_browser(
    stack: Stack, tmp_path: Path
) -> None:
    published = stack.compose("port", "flower", "5555").stdout.strip()
    assert published == f"127.0.0.1:{stack.flower_port}", "Flower is published on loopback only"
    health = flower(stack, "healthcheck", auth=False)
    assert (health.status_code, health.text) == (200, "OK")
    assert flower(stack, "api/workers", auth=False).status_code == 401
    assert flower(stack, "", auth=False).status_code == 401

    expected = stack.nodes()
    assert len(expected) == 5, expected  # 2 prefork + 2 threads + 1 solo, distinct names

    def online() -> set[str]:
        status = flower(stack, "api/workers?status=true").json()
        up = {node for node, alive in status.items() if alive}
        return up if up == expected else set()

    assert wait_for(online, "every replica online in Flower's /api/workers") == expected

    with chromium(tmp_path) as browser:
        token = base64.b64encode(":".join(stack.credentials).encode()).decode()
        browser.cdp("Network.enable", {})
        browser.cdp("Network.setExtraHTTPHeaders", {"headers": {"Authorization": f"Basic {token}"}})

        def all_online(rows: list[str]) -> bool:
            # The page breaks a node name after its "@": compare without the white space.
            compact = [r.replace(" ", "") for r in rows]
            return all(any(node in r and "Online" in r for r in compact) for node in expected)

        page_shows(browser, f"http://127.0.0.1:{stack.flower_port}/", all_online,
                   "every worker replica online on Flower's Workers page")  # fmt: skip
        shot = SCREENSHOTS / "compose-flower-workers.png"
        browser.screenshot(shot)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def native_results(tmp_path_factory: pytest.TempPathFactory, redis_url: str) -> dict[str, Any]:
    """A tiny native run of a Celery model (its own worker subprocess): the schema to match."""
    out = tmp_path_factory.mktemp("native")
    jobbench = Path(sys.executable).parent / "jobbench"
    env = {k: v for k, v in os.environ.items() if not k.startswith(FOREIGN_ENV)}
    env["REDIS_URL"] = redis_url
    subprocess.run([str(jobbench), "bench", "--models", "celery_threads", "--workloads", "cpu",
                    "--cpu-jobs", "20", "--repeat", "1", "--warmup", "0", "--no-predict", "-q",
                    "--out", str(out)],
                   env=env, check=True, timeout=180, stdin=subprocess.DEVNULL)  # fmt: skip
    return dict(json.loads((out / "latest" / "results.json").read_text()))


def schema_of(doc: dict[str, Any]) -> dict[str, Any]:
    return {
        "schema": doc["schema"],
        "top": sorted(doc),
        "metadata": sorted(doc["metadata"]),
        "row": sorted({k for row in doc["results"] for k in row}),
    }


def test_bench_compose_spreads_jobs_over_replicas_and_verifies(
    stack: Stack, native_results: dict[str, Any]
) -> None:
    run_id, doc = stack.bench(TINY_RUN)
    run_dir = stack.results_dir / run_id
    for path in (run_dir, *run_dir.iterdir()):
        st = path.stat()
        assert (st.st_uid, st.st_gid) == (stack.uid, stack.gid), path
    assert stack.uid != 0, "the producer writes as a non-root user"
    assert schema_of(doc) == schema_of(native_results)
    assert {r["model"] for r in doc["results"]} == {f"celery_{p}" for p in POOLS}
    assert all(r["n_error"] == 0 and r["n_ok"] == r["n_jobs"] for r in doc["results"])

    nodes = stack.nodes()
    spread: dict[str, dict[str, int]] = {}
    for row in doc["results"]:
        pool = row["model"].removeprefix("celery_")
        hosts = {f"{pool}@{h}" for h in row["jobs_per_host"]}
        assert hosts <= nodes, (row["model"], hosts)
        assert sum(row["jobs_per_host"].values()) == row["n_jobs"]
        spread[f"{row['model']}/{row['workload']}"] = row["jobs_per_host"]
        if f"worker-{pool}" in SCALE and row["workload"] == "io":
            assert len(hosts) == SCALE[f"worker-{pool}"], f"{row['model']} io: {hosts}"
    print(f"\njobs_per_host: {json.dumps(spread, sort_keys=True)}")

    rc, check = stack.verify(run_id)
    assert rc == 0 and check["accounted"] is True, check["totals"]
    assert check["totals"]["missing"] == 0 and check["totals"]["finished"] == check["totals"][
        "n_jobs"]  # fmt: skip


# --- faults across containers -------------------------------------------------------------------


#: Runs inside the redis container (sh and redis-cli, in the upstream image and the stand-in):
#: waits for a new celery_threads IO scope (not one of "$@") to have BUSY jobs running at once
#: and prints "scope started finished". Polling from the host through `docker compose exec`
#: takes ~0.3 s a round, too slow to land inside a run of a few seconds.
WAIT_MID_RUN_SH = r"""
deadline=$(( $(date +%s) + DEADLINE_S ))
while [ "$(date +%s)" -lt "$deadline" ]; do
    for key in $(redis-cli --raw --scan --pattern 'jobbench:*:celery_threads:io:*:attempts'); do
        case " $* " in *" $key "*) continue ;; esac
        scope=${key%:attempts}
        started=$(redis-cli --raw HLEN "$key")
        finished=$(redis-cli --raw HLEN "$scope:records")
        if [ $((started - finished)) -ge "$BUSY" ]; then
            echo "$scope $started $finished"
            exit 0
        fi
    done
    sleep 0.02
done
exit 1
"""


def wait_mid_run(stack: Stack, old_keys: set[str], busy: int) -> tuple[str, int, int]:
    """(scope, started, finished) once ``busy`` jobs of the fault run are in flight: every thread
    is inside a message, none is between two."""
    proc = stack.compose(
        "exec", "-T", "-e", f"BUSY={busy}", "-e", f"DEADLINE_S={int(DEADLINE_S)}", "redis",
        "sh", "-c", WAIT_MID_RUN_SH, "wait-mid-run", *sorted(old_keys),
        check=False, timeout_s=DEADLINE_S + 30,
    )  # fmt: skip
    assert proc.returncode == 0, f"never {busy} jobs running at once: {proc.stderr[-2000:]}"
    scope, started, finished = proc.stdout.split()
    n_jobs = int(FAULT_RUN["JOBBENCH_IO_JOBS"])
    assert int(finished) < n_jobs // 2, f"the fault came late: {finished} of {n_jobs} done"
    return scope, int(started), int(finished)


def mark_fault(stack: Stack, scope: str, fault: str) -> None:
    """The fault and its time in the scope's meta: ``verify`` reports the recovery from it."""
    stack.redis_cli("HSET", f"{scope}:meta", "fault", json.dumps(fault),
                    "fault_at_ns", str(time.time_ns()))  # fmt: skip


def restart_counts(stack: Stack) -> dict[str, int]:
    return {c["Name"].lstrip("/"): int(c["RestartCount"]) for pool in POOLS
            for c in stack.containers(f"worker-{pool}")}  # fmt: skip


@dataclass
class FaultRun:
    """A producer running in the background (``make bench-compose``) while a fault is injected."""

    proc: subprocess.Popen[bytes]
    log: Path
    #: Entries of the results directory and attempts keys in Redis from before this run.
    before: set[Path]
    old_keys: set[str]

    def abort(self) -> None:
        Stack.stop_bench(self.proc)


def start_fault_run(stack: Stack) -> FaultRun:
    before = set(stack.results_dir.iterdir())
    old_keys = set(stack.redis_cli("--scan", "--pattern", "jobbench:*:attempts").split())
    log = stack.results_dir.parent / f"fault-{uuid.uuid4().hex[:6]}.log"
    return FaultRun(stack.start_bench(FAULT_RUN, log), log, before, old_keys)


def finish_fault_run(stack: Stack, run: FaultRun, fault: str, **extra: Any) -> dict[str, Any]:
    """Wait for the producer, then reconcile the run (``jobbench verify``) and report it."""
    try:
        rc: int | None = run.proc.wait(timeout=DEADLINE_S * 2)
    except subprocess.TimeoutExpired:  # past its own JOBBENCH_TIMEOUT_S: stuck somewhere
        rc = None
    finally:
        run.abort()
    if rc != 0:
        output = run.log.read_text(errors="replace")[-3000:]
        logs = stack.logs("redis", "worker-threads", tail=80)
        how = "hung" if rc is None else f"exited with {rc}"
        pytest.fail(f"the producer {how} under the fault:\n{output}\n{logs}")
    run_id, doc = stack.new_run(run.before)
    rc, check = stack.verify(run_id)
    (scope,) = check["scopes"]
    figures = {
        "fault": fault,
        "enqueued": scope["enqueued"],
        "finished": scope["finished"],
        "failed": len(scope["failed"]),
        "delivered_more_than_once": len(scope["redelivered"]),
        "lost": len(scope["missing"]),
        "lost_ids": scope["missing"],
        "recovery_s": None if scope["recovery_s"] is None else round(scope["recovery_s"], 2),
        "visibility_timeout_s": VISIBILITY_TIMEOUT_S,
        "results_redelivered": doc["results"][0]["redelivered"],
        "under": "docker compose",
        **extra,
    }
    line = json.dumps(figures)
    print(f"\nfault figures: {line}")
    path = os.environ.get(REPORT_ENV)
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(line + "\n")
    assert rc == 0 and check["accounted"] is True, check["totals"]
    n_jobs = int(FAULT_RUN["JOBBENCH_IO_JOBS"])
    assert scope["enqueued"] == scope["finished"] == n_jobs
    assert scope["missing"] == [] and scope["failed"] == {}
    return figures


def test_worker_threads_sigkilled_mid_run_every_job_accounted(stack: Stack) -> None:
    """``docker compose kill -s SIGKILL worker-threads``: both replicas die mid-job. Docker treats
    a kill as a manual stop, so no restart policy brings them back (checked): they are started
    again as an operator would, and the messages they held come back after the visibility
    timeout; the jobs the kill interrupted run again (attempt 2)."""
    run = start_fault_run(stack)
    try:
        scope, started, finished = wait_mid_run(stack, run.old_keys, busy=THREADS_BUSY)
        fault = "worker-threads SIGKILL (docker compose kill)"
        mark_fault(stack, scope, fault)
        stack.compose("kill", "-s", "SIGKILL", "worker-threads")
        time.sleep(2.0)
        states = {(c["State"]["Status"], c["State"]["ExitCode"])
                  for c in stack.containers("worker-threads")}  # fmt: skip
        assert states == {("exited", 137)}, "killed, and not restarted by the restart policy"
        stack.compose("start", "worker-threads")
    except BaseException:
        run.abort()
        raise
    figures = finish_fault_run(stack, run, fault, in_flight_at_fault=started - finished)
    assert figures["delivered_more_than_once"] >= 1, "the jobs the kill interrupted ran again"
    assert figures["recovery_s"] is not None and figures["recovery_s"] >= VISIBILITY_TIMEOUT_S - 1


def test_redis_restarted_mid_run_every_job_accounted(stack: Stack) -> None:
    """``docker compose restart redis`` (broker and timing store) mid-run: Redis comes back with
    its append-only file; workers reconnect or exit and are restarted by ``restart:
    unless-stopped``; jobs whose ack or record hit the gap are redelivered."""
    restarts_before = restart_counts(stack)
    run = start_fault_run(stack)
    try:
        scope, started, finished = wait_mid_run(stack, run.old_keys, busy=THREADS_BUSY)
        fault = "Redis restart (docker compose restart redis)"
        mark_fault(stack, scope, fault)
        down_at = time.monotonic()
        stack.compose("restart", "redis")
        down_s = time.monotonic() - down_at
    except BaseException:
        run.abort()
        raise
    figures = finish_fault_run(
        stack, run, fault, in_flight_at_fault=started - finished,
        redis_restart_s=round(down_s, 2),
        worker_restarts=sum(restart_counts(stack).values()) - sum(restarts_before.values()),
    )  # fmt: skip
    assert figures["lost"] == 0


# --- RabbitMQ, and the teardown -----------------------------------------------------------------


def test_rabbitmq_profile_runs_the_small_bench(stack: Stack) -> None:
    broker = "amqp://jobbench:jobbench@rabbitmq:5672//"
    stack.env["JOBBENCH_BROKER_URL"] = broker  # every later compose call: the workers follow it
    stack.compose("--profile", "rabbitmq", "up", "-d", "--wait", "--no-build")
    (rabbit,) = stack.containers("rabbitmq")
    assert rabbit["State"]["Health"]["Status"] == "healthy"
    for pool in POOLS:
        for c in stack.containers(f"worker-{pool}"):
            assert f"CELERY_BROKER_URL={broker}" in c["Config"]["Env"], c["Name"]
    run_id, doc = stack.bench({**TINY_RUN, "JOBBENCH_IO_JOBS": "12", "JOBBENCH_CPU_JOBS": "60"})
    assert doc["metadata"]["settings"]["broker_url"] == "amqp://jobbench:***@rabbitmq:5672//"
    # Rows on a broker other than the run's Redis carry its scheme, as with --brokers.
    assert {r["model"] for r in doc["results"]} == {f"celery_{p}@amqp" for p in POOLS}
    assert all(r["n_error"] == 0 and r["n_ok"] == r["n_jobs"] for r in doc["results"])
    rc, check = stack.verify(run_id)
    assert rc == 0 and check["accounted"] is True, check["totals"]


def test_down_leaves_no_container_network_or_volume(stack: Stack) -> None:
    assert stack.leftovers()["volumes"], "the Redis volume exists before down -v"
    down = stack.down()
    assert down.returncode == 0, down.stderr[-3000:]
    assert stack.leftovers() == {"containers": [], "networks": [], "volumes": []}
