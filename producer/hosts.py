"""Several hosts on one machine: ``jobbench hosts`` (``make bench-hosts``).

Each simulated host is a Linux network namespace with a UTS namespace of its own (its own host
name, which every job record carries), joined by a veth link to a bridge in the root namespace on
a private subnet, ``10.250.<k>.0/24`` (``k`` unused on this machine). On the bridge address sit one
Redis (broker and timing store, bound to that address only), the HTTP target and, when RabbitMQ is
compared, a TCP relay to it (it listens on the root namespace's loopback only). Every host runs one
Celery worker per broker; the producer runs the ordinary bench against them with
``--external-workers``. During the last measured repeat on the Redis broker one host's link is cut
(``ip link set <veth> down``): the messages that host had taken but not acknowledged come back to
the others after the visibility timeout, and the report shows where every job ran, which were
redelivered and how long the recovery took. Nothing may be lost: the bench fails if a job is.

Needs root (network namespaces, veth links) and iproute2. Everything created (namespaces, links,
processes) is removed on exit, error, Ctrl-C or SIGTERM; names carry the owner's pid, so a later
run (or ``jobbench hosts --cleanup``) removes what a SIGKILLed run left behind.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import redis
from rich.table import Table

from producer.bench import Bench, BenchConfig
from producer.cli.options import (
    bounded,
    brokers_option,
    cpu_jobs_option,
    io_jobs_option,
    latency_ms_option,
    option,
    out_option,
    repeat_option,
    warmup_option,
    workloads_option,
)
from producer.console import ProgressFn, make_console
from producer.errors import ServiceError
from producer.processes import Popen, spawn, stop
from producer.report import build_report
from producer.results import JOBS_FILE, update_latest, write_jobs_csv, write_run
from producer.runners.celery import consumers, workers
from producer.runners.celery.models import broker_labels, celery_runner
from producer.services import redis_server, run_target
from shared import keys
from shared.settings import Settings, redact_url
from shared.timings import TimingStore
from shared.workloads import WORKLOADS, Workload
from worker import clock

ROOT = Path(__file__).resolve().parents[1]
#: Simulated hosts live on ``10.250.<k>.0/24``: private (RFC 1918) and rarely used; ``k`` is
#: picked among the subnets no interface of this machine uses.
SUBNET_PREFIX = "10.250"
#: Host ``i`` (1-based) gets ``.<HOST_ADDRESS_BASE + i>``; the bridge is ``.1``.
HOST_ADDRESS_BASE = 10
#: Namespace names: ``jobbench-<pid>-<n>-h<i>``; link names (15 characters at most):
#: ``jb<pid hex>n<n>br`` (the bridge) and ``jb<pid hex>n<n>h<i>`` (host i's cable).
NETNS_RE = re.compile(r"^jobbench-(?P<pid>\d+)-\d+-(?:h\d+|probe)$")
LINK_RE = re.compile(r"^jb(?P<pid>[0-9a-f]+)n\d(?:br|h\d+)$")
#: The RabbitMQ compared by default when it answers (our machines: loopback, guest/guest).
DEFAULT_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672//"
#: Seconds every worker of every host may take to consume its queue.
READY_TIMEOUT_S = 60.0
#: Seconds between two looks at how many jobs of the cut repeat are done.
CUT_POLL_S = 0.005
#: Seconds a worker gets to stop (SIGTERM) before its process group is killed. The cut host's
#: worker never finishes: its jobs wait on a dead link.
STOP_GRACE_S = 3.0
#: kombu's lock around the restore of unacknowledged messages (``unacked_mutex_key``). A cut host
#: holding it would block every restore for its 300 s expiry.
KOMBU_RESTORE_MUTEX = "unacked_mutex"
#: Seconds after which a restore lock still held by the same owner as at the cut is the cut
#: host's (a live worker holds it for milliseconds) and is released.
STALE_MUTEX_S = 2.0
#: Sets the host name in the new UTS namespace, then becomes the worker (no shell involved).
_AS_HOST = (
    "import os, socket, sys; socket.sethostname(sys.argv[1]); os.execv(sys.argv[2], sys.argv[2:])"
)

_counter = iter(range(10**9))


class HostsUnavailable(ServiceError):
    """This machine cannot build simulated hosts (not root, no iproute2, not Linux)."""


# --- ip(8) -----------------------------------------------------------------------------------


def ip(*args: str, check: bool = True) -> str:
    proc = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if check and proc.returncode != 0:
        raise ServiceError(f"ip {' '.join(args)}: {proc.stderr.strip() or proc.returncode}")
    return proc.stdout


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_leftovers() -> list[str]:
    """Delete the namespaces and links of jobbench runs whose process is gone."""
    removed: list[str] = []
    for line in ip("netns", "list", check=False).splitlines():
        name = line.split()[0] if line.strip() else ""
        m = NETNS_RE.match(name)
        if m and not _pid_alive(int(m["pid"])):
            ip("netns", "del", name, check=False)
            removed.append(name)
    for line in ip("-o", "link", "show", check=False).splitlines():
        parts = line.split(":", 2)
        name = parts[1].strip().split("@")[0] if len(parts) > 1 else ""
        m = LINK_RE.match(name)
        if m and not _pid_alive(int(m["pid"], 16)):
            ip("link", "del", name, check=False)
            removed.append(name)
    return removed


def preflight() -> None:
    """Raise ``HostsUnavailable`` (one line) unless this process can build namespaces."""
    if not sys.platform.startswith("linux"):
        raise HostsUnavailable("simulated hosts need Linux network namespaces")
    if os.geteuid() != 0:
        raise HostsUnavailable(
            "simulated hosts need root (network namespaces, veth links): run it as root, "
            "e.g. sudo make bench-hosts"
        )
    for tool, package in (("ip", "iproute2"), ("unshare", "util-linux")):
        if shutil.which(tool) is None:
            raise HostsUnavailable(f"{tool} not found: apt-get install {package}")
    probe = f"jobbench-{os.getpid()}-0-probe"
    proc = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if proc.returncode != 0:
        raise HostsUnavailable(f"cannot create a network namespace: {proc.stderr.strip()}")
    ip("netns", "del", probe, check=False)


# --- the network -----------------------------------------------------------------------------


@dataclass
class SimHost:
    """One simulated host: its host name, namespace, address and the root-side end of its
    cable (``link``), which is what a cut takes down."""

    index: int
    name: str
    netns: str
    link: str
    address: str
    cut_at_ns: int | None = None


@dataclass
class Network:
    subnet: int
    bridge: str
    hosts: list[SimHost]

    @property
    def gateway(self) -> str:
        """The bridge's address: where Redis, the target and the relay listen."""
        return f"{SUBNET_PREFIX}.{self.subnet}.1"

    @property
    def cidr(self) -> str:
        return f"{SUBNET_PREFIX}.{self.subnet}.0/24"


def _used_subnets() -> set[int]:
    used: set[int] = set()
    text = ip("-4", "-o", "addr", "show", check=False) + ip("-4", "route", "show", check=False)
    for m in re.finditer(rf"\b{re.escape(SUBNET_PREFIX)}\.(\d+)\.\d+", text):
        used.add(int(m[1]))
    return used


def pick_subnet(used: set[int], rng: random.Random | None = None) -> int:
    free = [k for k in range(1, 255) if k not in used]
    if not free:
        raise ServiceError(f"every {SUBNET_PREFIX}.k.0/24 subnet is in use on this machine")
    return (rng or random.Random()).choice(free)


def names(pid: int, run: int, n_hosts: int) -> tuple[str, list[tuple[str, str]]]:
    """The bridge name and each host's (namespace, link) names; links fit IFNAMSIZ (15)."""
    token = f"jb{pid:x}n{run % 10}"
    hosts = [(f"jobbench-{pid}-{run % 10}-h{i}", f"{token}h{i}") for i in range(1, n_hosts + 1)]
    return f"{token}br", hosts


@contextlib.contextmanager
def network(n_hosts: int, host_names: Sequence[str] | None = None) -> Iterator[Network]:
    """A bridge and ``n_hosts`` namespaces cabled to it; all removed on exit."""
    bridge, host_ids = names(os.getpid(), next(_counter), n_hosts)
    subnet = pick_subnet(_used_subnets())
    net = Network(subnet=subnet, bridge=bridge, hosts=[])
    gateway = net.gateway
    try:
        ip("link", "add", bridge, "type", "bridge")
        ip("addr", "add", f"{gateway}/24", "dev", bridge)
        ip("link", "set", bridge, "up")
        for i, (netns, link) in enumerate(host_ids, start=1):
            name = host_names[i - 1] if host_names else f"host{i}"
            address = f"{SUBNET_PREFIX}.{subnet}.{HOST_ADDRESS_BASE + i}"
            host = SimHost(i, name, netns, link, address)
            net.hosts.append(host)
            ip("netns", "add", netns)
            ip("-n", netns, "link", "set", "lo", "up")
            peer = f"{link}p"
            ip("link", "add", link, "type", "veth", "peer", "name", peer)
            ip("link", "set", peer, "netns", netns)
            ip("-n", netns, "link", "set", peer, "name", "eth0")
            ip("-n", netns, "addr", "add", f"{host.address}/24", "dev", "eth0")
            ip("-n", netns, "link", "set", "eth0", "up")
            ip("link", "set", link, "master", bridge)
            ip("link", "set", link, "up")
        yield net
    finally:
        for host in net.hosts:
            ip("netns", "del", host.netns, check=False)  # takes its end of the cable along
            ip("link", "del", host.link, check=False)
        ip("link", "del", bridge, check=False)


# --- processes -------------------------------------------------------------------------------


def spawn_on_host(argv: Sequence[str], env: dict[str, str], log: Path) -> Popen:
    """Start ``argv`` in a session of its own, killed (SIGKILL) if this process dies: even a
    SIGKILLed producer leaves no Redis or worker behind."""
    return spawn(argv, env=env, log=log, cwd=ROOT, own_session=True, die_with_parent=True)


@contextlib.contextmanager
def private_redis(address: str, workdir: Path) -> Iterator[str]:
    """The hosts' Redis (broker and timing store), bound to the bridge address only."""
    with redis_server(
        workdir, bind=address, extra_args=("--maxmemory-policy", "noeviction"),
        die_with_parent=True,
    ) as url:  # fmt: skip
        yield url


class TcpRelay:
    """Forwards every connection made to ``host:port`` (on the bridge) to ``upstream``: how the
    hosts reach a RabbitMQ that listens on the root namespace's loopback only. Closing a relayed
    connection closes its twin, so the broker sees a worker go when its process goes."""

    def __init__(self, host: str, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.server = socket.create_server((host, 0))
        self.server.settimeout(0.2)
        self.host, self.port = host, int(self.server.getsockname()[1])
        self._closed = threading.Event()
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._accept, name="jobbench-relay", daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self.server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.upstream, timeout=5)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                dst.sendall(data)
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self._closed.set()
        self.server.close()
        with self._lock:
            for s in self._sockets:
                with contextlib.suppress(OSError):
                    s.close()
        self._thread.join(2)


def relayed_url(url: str, relay: TcpRelay) -> str:
    """``url`` with its host and port replaced by the relay's (user and password kept)."""
    parts = urlsplit(url)
    userinfo = parts.netloc.rpartition("@")[0]
    netloc = f"{userinfo}@{relay.host}:{relay.port}" if userinfo else f"{relay.host}:{relay.port}"
    return urlunsplit(parts._replace(netloc=netloc))


def worker_argv(
    host: SimHost, *, pool: workers.PoolName, concurrency: int, queue: str, prefetch: int, node: str
) -> list[str]:
    """The one Celery worker command line, in ``host``'s network namespace under ``host``'s own
    host name (heartbeats on: a cut host must be seen to go)."""
    return [
        "ip", "netns", "exec", host.netns, "unshare", "--uts", "--",
        sys.executable, "-c", _AS_HOST, host.name,
        *workers.worker_command(
            pool=pool, concurrency=concurrency, nodename=f"{node}@%h", queue=queue,
            prefetch_multiplier=prefetch, heartbeat=True,
        ),
    ]  # fmt: skip


# --- the run ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class HostsConfig:
    """One ``jobbench hosts`` run; each field is also its option."""

    n_hosts: int = option(3, "simulated hosts", flag="--hosts", env="JOBBENCH_HOSTS",
                          type=bounded(int, 2, 20))  # fmt: skip
    pool: workers.PoolName = option(
        "threads", "Celery pool of every host's workers", env="JOBBENCH_HOSTS_POOL",
        choices=("prefork", "threads", "solo"),
    )  # fmt: skip
    #: Worker concurrency on each host.
    concurrency: int = option(
        4, "worker concurrency on each host", env="JOBBENCH_HOSTS_CONCURRENCY",
        type=bounded(int, 1, 1000),
    )  # fmt: skip
    workloads: tuple[Workload, ...] = workloads_option(("io",), WORKLOADS)
    io_jobs: int = io_jobs_option(300)
    cpu_jobs: int = cpu_jobs_option(2000)
    latency_ms: float = latency_ms_option(50.0, "latency of the HTTP target")
    repeat: int = repeat_option(3, "measured repeats per broker")
    warmup: int = warmup_option("untimed warm-up runs")
    #: The host whose link is cut (1-based); 0: no cut.
    cut_host: int = option(
        3, "host whose link goes down during the last Redis repeat (0: none)", flag="--cut",
        env="JOBBENCH_CUT_HOST", type=bounded(int, 0, 20),
    )  # fmt: skip
    #: The cut comes once this fraction of the cut repeat's jobs is recorded.
    cut_at: float = option(0.3, "cut once this fraction of that repeat's jobs is done",
                           env="JOBBENCH_CUT_AT", type=bounded(float, 0.0, 0.95))  # fmt: skip
    #: Given to the hosts' workers as their ``JOBBENCH_VISIBILITY_TIMEOUT_S``. Its own variable:
    #: exporting the workers' variable for this command would change every later bench's workers.
    visibility_timeout_s: int = option(
        4, "seconds before a cut host's unacknowledged jobs go to the others",
        env="JOBBENCH_HOSTS_VISIBILITY_TIMEOUT_S", type=bounded(int, 1, 3600),
    )  # fmt: skip
    #: ``redis`` and/or broker URLs; None: Redis, plus RabbitMQ at DEFAULT_AMQP_URL if it answers.
    brokers: tuple[str, ...] | None = brokers_option(
        None, f"'redis' and/or broker URLs (unset: Redis, and RabbitMQ at "
        f"{redact_url(DEFAULT_AMQP_URL)} if it answers)",
    )  # fmt: skip
    out_dir: Path = out_option("results directory")


@dataclass
class Broker:
    label: str
    #: What the producer (root namespace) uses, and what the hosts use.
    url: str
    host_url: str

    def node(self, pool: str) -> str:
        return f"{pool}-{self.label}" if self.label else pool


def amqp_reachable(url: str, timeout_s: float = 1.0) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "", parts.port or 5672), timeout_s):
            return True
    except OSError:
        return False


def wanted_brokers(config: HostsConfig) -> tuple[tuple[str, ...], list[str]]:
    """The brokers to compare, and notes on the ones left out."""
    if config.brokers is not None:
        return config.brokers, []
    if amqp_reachable(DEFAULT_AMQP_URL):
        return ("redis", DEFAULT_AMQP_URL), []
    return ("redis",), [f"RabbitMQ at {redact_url(DEFAULT_AMQP_URL)} does not answer: Redis only"]


class Cutter(threading.Thread):
    """Takes ``host``'s link down once ``threshold`` jobs of ``scope_key`` are recorded."""

    def __init__(self, redis_url: str, scope_key: str, threshold: int, host: SimHost) -> None:
        super().__init__(name="jobbench-cutter", daemon=True)
        self.client = redis.Redis.from_url(redis_url)
        self.scope_key, self.threshold, self.host = scope_key, threshold, host
        self.stop = threading.Event()
        self.done_at_cut: int | None = None
        self.error: str | None = None

    def run(self) -> None:
        try:
            records = keys.records(self.scope_key)
            while not self.stop.is_set():
                done = int(self.client.hlen(records))
                if done >= self.threshold:
                    holder = self.client.get(KOMBU_RESTORE_MUTEX)
                    ip("link", "set", self.host.link, "down")
                    self.host.cut_at_ns = time.time_ns()
                    self.done_at_cut = done
                    if holder is not None:
                        self._release_if_stale(holder)
                    return
                time.sleep(CUT_POLL_S)
        except Exception as exc:  # reported by the caller; the run itself goes on
            self.error = f"{type(exc).__name__}: {exc}"
        finally:
            self.client.close()

    def _release_if_stale(self, holder: bytes | str) -> None:
        """The restore lock was held at the cut: if the same owner still holds it a moment later,
        the owner is the cut host, which will never release it."""
        if not self.stop.wait(STALE_MUTEX_S) and self.client.get(KOMBU_RESTORE_MUTEX) == holder:
            self.client.delete(KOMBU_RESTORE_MUTEX)


def run_hosts(config: HostsConfig, progress: ProgressFn | None = None) -> dict[str, Any]:
    """Build the hosts, run the bench on them (one host cut mid-run), tear everything down;
    return the results document with its ``hosts`` section."""
    say = progress or (lambda _m, _d, _t: None)
    model = f"celery_{config.pool}"
    brokers_wanted, notes = wanted_brokers(config)
    workdir = Path(tempfile.mkdtemp(prefix="jobbench-hosts-"))
    procs: list[Popen] = []
    relays: list[TcpRelay] = []
    stack = contextlib.ExitStack()
    try:
        say("building the hosts", 0, 0)
        net = stack.enter_context(network(config.n_hosts))
        redis_url = stack.enter_context(private_redis(net.gateway, workdir))
        target = stack.enter_context(run_target(config.latency_ms, host=net.gateway))
        settings = Settings(redis_url=redis_url, redis_url_explicit=True)
        # The Redis broker last: its last repeat, where the cut happens, ends the run.
        labels = broker_labels(brokers_wanted, settings)
        brokers: list[Broker] = []
        for label, url in sorted(labels.items(), key=lambda kv: kv[0] == ""):
            if url is None:
                brokers.append(Broker(label, redis_url, redis_url))
            elif urlsplit(url).scheme in ("redis", "rediss", "unix"):
                brokers.append(Broker(label, url, url))  # must be reachable from the hosts
            else:
                parts = urlsplit(url)
                relay = TcpRelay(net.gateway, (parts.hostname or "127.0.0.1", parts.port or 5672))
                relays.append(relay)
                brokers.append(Broker(label, url, relayed_url(url, relay)))
        queue = f"jobbench-hosts-{os.getpid()}-{time.time_ns() % 10**6}"
        runner = celery_runner(config.pool)
        last_workload = config.workloads[-1]
        # The bench's own tuning for this pool (one worker serves every workload of the run).
        prefetch = runner.prefetch_multiplier(last_workload)
        env = {
            **os.environ,
            "REDIS_URL": redis_url,
            "JOBBENCH_VISIBILITY_TIMEOUT_S": str(config.visibility_timeout_s),
            "JOBBENCH_PARENT_PID": str(os.getpid()),
            "PYTHONUNBUFFERED": "1",
            "PYTHONWARNINGS": "ignore:You're running the worker with superuser privileges",
            "NO_PROXY": ",".join(filter(None, [os.environ.get("NO_PROXY"), net.gateway])),
            "no_proxy": ",".join(filter(None, [os.environ.get("no_proxy"), net.gateway])),
        }
        say(f"starting {len(brokers) * config.n_hosts} workers", 0, 0)
        for broker in brokers:
            for host in net.hosts:
                argv = worker_argv(
                    host, pool=config.pool, concurrency=config.concurrency,
                    queue=f"{queue}.{config.pool}", prefetch=prefetch,
                    node=broker.node(config.pool),
                )  # fmt: skip
                log = workdir / f"{host.name}-{broker.label or 'redis'}.log"
                broker_env = {**env, "CELERY_BROKER_URL": broker.host_url}
                procs.append(spawn_on_host(argv, broker_env, log))
        for broker in brokers:
            expected = {f"{broker.node(config.pool)}@{h.name}" for h in net.hosts}
            _wait_for_nodes(broker.url, f"{queue}.{config.pool}", expected, procs, workdir)

        bench_config = BenchConfig(
            models=(model,), workloads=config.workloads, io_jobs=config.io_jobs,
            cpu_jobs=config.cpu_jobs, latency_ms=config.latency_ms, url=target.url,
            repeat=config.repeat, warmup=config.warmup, shuffle=False, out_dir=config.out_dir,
            completion_timeout_s=max(120.0, 20.0 * config.visibility_timeout_s),
            brokers=tuple("redis" if b.url == redis_url else b.url for b in brokers),
            external_workers=True, queue_prefix=queue, external_wait_s=30.0,
            # The cost model knows one machine: workers on simulated hosts are not its terms.
            no_predict=True,
        )  # fmt: skip
        bench = Bench(bench_config, settings, progress)
        cutter: Cutter | None = None
        if config.cut_host:
            scope = keys.scope(bench.run_id, model, last_workload, config.repeat - 1)
            n_jobs = config.io_jobs if last_workload == "io" else config.cpu_jobs
            threshold = max(1, int(n_jobs * config.cut_at))
            cutter = Cutter(redis_url, scope, threshold, net.hosts[config.cut_host - 1])
            cutter.start()
        try:
            doc = bench.run()
        finally:
            if cutter is not None:
                cutter.stop.set()
                cutter.join(STALE_MUTEX_S + 1)
        doc["hosts"] = _hosts_section(bench, net, config, brokers, cutter, notes, redis_url)
        _write(doc, bench, config.out_dir)
        return doc
    finally:
        stop(procs, STOP_GRACE_S, group=True)
        for relay in relays:
            relay.close()
        stack.close()
        shutil.rmtree(workdir, ignore_errors=True)


def _wait_for_nodes(
    broker_url: str,
    queue: str,
    expected: set[str],
    procs: Sequence[Popen],
    workdir: Path,
) -> None:
    """Until every expected node consumes ``queue`` (a worker that exits is an error)."""

    def check() -> None:
        for proc in procs:
            if proc.poll() is not None:
                logs = " | ".join(
                    line for p in sorted(workdir.glob("*.log"))
                    for line in p.read_text(errors="replace").splitlines()[-3:]
                )  # fmt: skip
                raise ServiceError(f"a host's worker exited with {proc.returncode}: {logs[-600:]}")

    app = workers.producer_app(broker_url)
    seen = consumers.wait_for_consumers(
        app, queue, wait_s=READY_TIMEOUT_S, expected=expected, check=check
    )
    if not expected <= seen:
        missing = ", ".join(sorted(expected - seen))
        raise ServiceError(f"workers not up after {READY_TIMEOUT_S:.0f} s: {missing}")


def _hosts_section(
    bench: Bench,
    net: Network,
    config: HostsConfig,
    brokers: Sequence[Broker],
    cutter: Cutter | None,
    notes: list[str],
    redis_url: str,
) -> dict[str, Any]:
    """Where the jobs ran, and what the cut did: jobs on the cut host, redelivered jobs and
    where they went, recovery time; timestamps of other hosts on the producer's clock."""
    store = TimingStore.from_url(redis_url)
    try:
        shift = clock.relative_offsets_ns(clock.load_offsets(store.client))
        section: dict[str, Any] = {
            "subnet": net.cidr,
            "hosts": {
                h.name: {"address": h.address, "netns": h.netns, "cut": h.cut_at_ns is not None}
                for h in net.hosts
            },
            "pool": config.pool,
            "concurrency_per_host": config.concurrency,
            "visibility_timeout_s": config.visibility_timeout_s,
            "brokers": {b.label or "redis": redact_url(b.url) for b in brokers},
            "notes": list(notes),
            "cut": None,
        }
        if cutter is None:
            return section
        if cutter.error or net.hosts[config.cut_host - 1].cut_at_ns is None:
            section["notes"].append(f"no cut happened: {cutter.error or 'threshold not reached'}")
            return section
        host = net.hosts[config.cut_host - 1]
        assert host.cut_at_ns is not None
        model = f"celery_{config.pool}"
        workload = config.workloads[-1]
        run = next(r for r in bench.runs if r.model == model and r.workload == workload)
        records = run.results[-1].records
        scope = keys.scope(bench.run_id, model, workload, config.repeat - 1)
        meta = store.scope_meta(scope)
        first_ns = int(meta.get("first_enqueued_at_ns", min(r.enqueued_at_ns for r in records)))

        def on_producer_clock(r_host: str, t_ns: int) -> int:
            return t_ns + shift.get(r_host, 0)

        redelivered = [r for r in records if r.attempt > 1]
        to: dict[str, int] = {}
        for r in redelivered:
            to[r.host] = to.get(r.host, 0) + 1
        per_host: dict[str, int] = {}
        for r in records:
            per_host[r.host] = per_host.get(r.host, 0) + 1
        first_redo = min((on_producer_clock(r.host, r.started_at_ns) for r in redelivered),
                         default=None)  # fmt: skip
        last_redo = max((on_producer_clock(r.host, r.finished_at_ns) for r in redelivered),
                        default=None)  # fmt: skip
        section["cut"] = {
            "host": host.name,
            "link": host.link,
            "model": model,
            "workload": workload,
            "repeat": config.repeat - 1,
            "n_jobs": len(records),
            "at_s": round((host.cut_at_ns - first_ns) / 1e9, 3),
            "jobs_done_at_cut": cutter.done_at_cut,
            "jobs_per_host": dict(sorted(per_host.items())),
            "jobs_on_cut_host": per_host.get(host.name, 0),
            "redelivered": len(redelivered),
            "redelivered_job_ids": sorted(r.job_id for r in redelivered),
            "redelivered_to": dict(sorted(to.items())),
            "first_redelivery_after_cut_s": (
                None if first_redo is None else round((first_redo - host.cut_at_ns) / 1e9, 3)
            ),
            "recovery_s": (
                None if last_redo is None else round((last_redo - host.cut_at_ns) / 1e9, 3)
            ),
            "wall_s": round(run.wall_s[-1], 3),
            "lost": run.n_jobs - len(records),
        }
        return section
    finally:
        store.client.close()


def _write(doc: dict[str, Any], bench: Bench, out_dir: Path) -> Path:
    run_dir = write_run(out_dir, doc)
    write_jobs_csv(run_dir / JOBS_FILE, bench.job_rows())
    build_report(run_dir)
    report = run_dir / "report.md"
    if report.exists():
        with open(report, "a", encoding="utf-8") as fh:
            fh.write("\n" + "\n".join(hosts_markdown(doc)) + "\n")
    update_latest(out_dir, run_dir)  # last: every file of the run is written
    return run_dir


# --- output ----------------------------------------------------------------------------------


def hosts_rows(doc: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Per host: its address, then the jobs of every result row, then what happened to it."""
    section = doc["hosts"]
    results = doc["results"]
    header = ["host", "address", *(f"{r['workload']} {r['model']}" for r in results), "status"]
    cut = section.get("cut") or {}
    rows = []
    for name, info in section["hosts"].items():
        status = "up"
        if cut.get("host") == name:
            status = f"cut at {cut['at_s']:.2f} s ({cut['jobs_done_at_cut']} jobs done)"
        jobs = [str(r.get("jobs_per_host", {}).get(name, 0)) for r in results]
        rows.append([name, info["address"], *jobs, status])
    return header, rows


def cut_summary(doc: dict[str, Any]) -> str:
    cut = doc["hosts"].get("cut")
    if not cut:
        return "no host was cut"
    to = ", ".join(f"{h} {n}" for h, n in cut["redelivered_to"].items()) or "-"
    recovery = "-" if cut["recovery_s"] is None else f"{cut['recovery_s']:.2f} s"
    first = cut["first_redelivery_after_cut_s"]
    return (
        f"cut {cut['host']} at {cut['at_s']:.2f} s into {cut['workload']} {cut['model']} "
        f"repeat {cut['repeat'] + 1}: {cut['redelivered']} jobs redelivered ({to}), "
        f"first {'-' if first is None else f'{first:.2f} s'} after the cut, all done "
        f"{recovery} after it; {cut['lost']} lost of {cut['n_jobs']} "
        f"(visibility timeout {doc['hosts']['visibility_timeout_s']} s)"
    )


def hosts_markdown(doc: dict[str, Any]) -> list[str]:
    header, rows = hosts_rows(doc)
    lines = ["## Hosts", "", f"Simulated hosts on {doc['hosts']['subnet']} (network namespaces).",
             "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]  # fmt: skip
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    clocks = doc.get("metadata", {}).get("clocks", {}).get("hosts", {})
    lines += ["", cut_summary(doc) + ".", ""]
    if clocks:
        lines.append("Clock offsets against Redis TIME (bound = RTT/2 + 1 µs): " + ", ".join(
            f"{h} {c['offset_us']:+.1f} ± {c['error_us']:.1f} µs" for h, c in clocks.items()
        ) + ".")  # fmt: skip
    lines += [f"Note: {n}" for n in doc["hosts"].get("notes", [])]
    return lines


def print_hosts(doc: dict[str, Any]) -> None:
    console = make_console()
    header, rows = hosts_rows(doc)
    table = Table(title="jobs per host", title_justify="left")
    for col in header:
        table.add_column(col, justify="left" if col in ("host", "address", "status") else "right")
    for row in rows:
        table.add_row(*row)
    console.print(table)
    for line in hosts_markdown(doc):
        if line.startswith(("cut ", "no host", "Clock", "Note")):
            console.print(line)
