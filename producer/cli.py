"""The ``jobbench`` command line: one entry point, subcommands, every option with an
environment variable, one-line errors and named exit codes."""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

from rich.console import Console

from producer import embedded_redis
from producer.services import ServiceError
from shared.settings import BROKER_SCHEMES, SettingsError, validate_http_url, validate_url
from shared.workloads import RESULT_MODES, WORKLOADS

if TYPE_CHECKING:  # bench imports every runner and the Celery app: not at start-up
    from producer.bench import Progress

EXIT_OK = 0
#: The command ran but found a problem: jobs missing, a slowdown beyond the allowed threshold.
EXIT_FAILURE = 1
#: Bad input: an unknown option value, a malformed URL, an unreachable configured service.
EXIT_USAGE = 2
#: Interrupted with Ctrl-C (128 + SIGINT), after everything started was stopped.
EXIT_INTERRUPTED = 130

T = TypeVar("T", int, float)

EPILOG = """examples:
  jobbench bench                                   # the default run: every model, both workloads
  jobbench bench --workloads io --io-jobs 500 --latency-ms 50
  jobbench bench --models sequential,multiprocessing_pool,celery_prefork --cpu-jobs 2000
  jobbench bench --url https://httpbin.org/ip --workloads io
  REDIS_URL=redis://:secret@10.0.0.5:6379/1 jobbench bench
  jobbench bench --external-workers --queue jobbench   # measure workers started elsewhere
  jobbench bench --brokers redis,amqp://guest:guest@127.0.0.1:5672// --models celery_threads
  jobbench hosts                                   # simulated hosts, one cut mid-run (root)
  jobbench target --port 8080 --latency-ms 160     # the local HTTP target alone
"""


class Parser(argparse.ArgumentParser):
    """argparse with a one-line error on stderr and exit code 2."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        raise SystemExit(EXIT_USAGE)


def bounded(kind: Callable[[str], T], lo: T, hi: T) -> Callable[[str], T]:
    def parse(text: str) -> T:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if not lo <= value <= hi:  # also rejects NaN
            shown = text if text.isprintable() else repr(text)  # one line, no escapes
            raise argparse.ArgumentTypeError(f"must be between {lo} and {hi}, got {shown}")
        return value

    parse.__name__ = kind.__name__
    return parse


def choice_list(allowed: Sequence[str], what: str) -> Callable[[str], tuple[str, ...]]:
    def parse(text: str) -> tuple[str, ...]:
        items = tuple(dict.fromkeys(s.strip() for s in text.split(",") if s.strip()))
        if not items:
            raise argparse.ArgumentTypeError(f"no {what} given")
        # Quoted when not printable: the error stays one line and sends no terminal escapes.
        unknown = [s if s.isprintable() else repr(s) for s in items if s not in allowed]
        if unknown:
            raise argparse.ArgumentTypeError(
                f"unknown {what} {', '.join(unknown)} (choose from {', '.join(allowed)})"
            )
        return items

    return parse


def http_url(text: str) -> str:
    try:
        return validate_http_url(text)
    except SettingsError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def broker_url(text: str) -> str:
    try:
        return validate_url(text.strip(), BROKER_SCHEMES, "--broker")
    except SettingsError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def broker_list(text: str) -> tuple[str, ...]:
    """``redis`` (the run's Redis) or broker URLs, comma-separated."""
    items = tuple(dict.fromkeys(s.strip() for s in text.split(",") if s.strip()))
    if not items:
        raise argparse.ArgumentTypeError("no broker given")
    return tuple(item if item == "redis" else broker_url(item) for item in items)


#: A queue name prefix: what Celery, Redis keys and RabbitMQ all accept without quoting.
_QUEUE_PREFIX = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$")


def queue_prefix(text: str) -> str:
    if not _QUEUE_PREFIX.match(text):
        raise argparse.ArgumentTypeError(
            f"queue prefix must be 1-100 of A-Z a-z 0-9 . _ : - (starting alphanumeric): {text!r}"
        )
    return text


#: Values an on/off environment variable may take.
_TRUE, _FALSE = frozenset({"1", "true", "yes", "on"}), frozenset({"", "0", "false", "no", "off"})


def env_flag(parser: argparse.ArgumentParser, flag: str, env: str, help: str) -> None:
    """A ``store_true`` option that ``env`` (1/true/yes/on) can also turn on."""
    raw = os.environ.get(env, "").strip().lower()
    if raw not in _TRUE | _FALSE:
        raise SettingsError(f"{env} must be 1/0, true/false, yes/no or on/off: got {raw!r}")
    parser.add_argument(
        flag, action="store_true", default=raw in _TRUE, help=f"{help} [env {env}=1]"
    )


def env_option(
    parser: argparse.ArgumentParser, flag: str, env: str, default: Any, help: str, **kw: Any
) -> None:
    """An option whose default comes from ``env`` (validated by the same ``type``)."""
    value = os.environ.get(env)
    shown = "unset" if default is None else default
    parser.add_argument(
        flag,
        default=value if value not in (None, "") else default,
        help=f"{help} [env {env}; default {shown}]",
        **kw,
    )


def add_bench_options(p: argparse.ArgumentParser) -> None:
    from producer.bench import DEFAULT_MODELS
    from producer.runners import RUNNERS
    from shared.workloads import DEFAULT_CPU_JOBS, DEFAULT_IO_JOBS

    models = sorted(RUNNERS)
    env_option(
        p,
        "--models",
        "JOBBENCH_MODELS",
        ",".join(m for m in DEFAULT_MODELS if m in RUNNERS),
        f"comma-separated models ({', '.join(models)})",
        type=choice_list(models, "model"),
    )
    env_option(
        p,
        "--workloads",
        "JOBBENCH_WORKLOADS",
        "io,cpu",
        "comma-separated workloads",
        type=choice_list(WORKLOADS, "workload"),
    )
    env_option(
        p,
        "--io-jobs",
        "JOBBENCH_IO_JOBS",
        DEFAULT_IO_JOBS,
        "HTTP requests per IO run",
        type=bounded(int, 1, 100_000),
    )
    env_option(
        p,
        "--cpu-jobs",
        "JOBBENCH_CPU_JOBS",
        DEFAULT_CPU_JOBS,
        "CPU jobs: get_prime_numbers(n) for n in range(1000, 1000+N)",
        type=bounded(int, 1, 1_000_000),
    )
    env_option(
        p,
        "--latency-ms",
        "JOBBENCH_LATENCY_MS",
        160.0,
        "latency of the local HTTP target per request",
        type=bounded(float, 0.0, 60_000.0),
    )
    env_option(
        p,
        "--jitter-ms",
        "JOBBENCH_JITTER_MS",
        0.0,
        "uniform ± jitter of the target",
        type=bounded(float, 0.0, 60_000.0),
    )
    env_option(
        p,
        "--url",
        "JOBBENCH_URL",
        None,
        "IO target URL instead of the local target (e.g. https://httpbin.org/ip)",
        type=http_url,
    )
    env_option(
        p,
        "--repeat",
        "JOBBENCH_REPEAT",
        3,
        "measured repeats per model and workload",
        type=bounded(int, 1, 100),
    )
    env_option(
        p,
        "--warmup",
        "JOBBENCH_WARMUP",
        1,
        "untimed warm-up runs (of a few jobs) per model",
        type=bounded(int, 0, 10),
    )
    env_option(
        p,
        "--result",
        "JOBBENCH_RESULT",
        "digest",
        "what each job hands back: a digest, or the full result (primes list, body)",
        choices=RESULT_MODES,
    )
    env_option(
        p,
        "--thread-pool-workers",
        "JOBBENCH_THREAD_POOL_WORKERS",
        None,
        "ThreadPoolExecutor max_workers (unset: Python's default)",
        type=bounded(int, 1, 10_000),
    )
    env_option(
        p,
        "--chunksize",
        "JOBBENCH_CHUNKSIZE",
        None,
        "Pool.map / ProcessPoolExecutor.map chunksize (unset: Pool.map's heuristic)",
        type=bounded(int, 1, 1_000_000),
    )
    env_option(
        p,
        "--batch-size",
        "JOBBENCH_BATCH_SIZE",
        None,
        "Celery: jobs per message (unset: chosen from jobs and concurrency)",
        type=bounded(int, 1, 100_000),
    )
    env_option(
        p,
        "--timeout-s",
        "JOBBENCH_TIMEOUT_S",
        600.0,
        "Celery: seconds to wait for every job before naming the missing ones",
        type=bounded(float, 0.1, 86_400.0),
    )
    env_option(
        p,
        "--seed",
        "JOBBENCH_SEED",
        None,
        "seed of the model-order shuffle",
        type=bounded(int, 0, 2**32 - 1),
    )
    p.add_argument(
        "--no-shuffle",
        action="store_true",
        help="run models in the given order in every repeat (default: shuffled)",
    )
    env_option(
        p,
        "--out",
        "JOBBENCH_OUT",
        Path("results"),
        "results directory: writes OUT/<run_id>/results.json and OUT/latest",
        type=Path,
    )
    p.add_argument(
        "--flower", action="store_true", help="keep Flower up during the run and print its URL"
    )
    env_option(
        p,
        "--broker",
        "CELERY_BROKER_URL",
        None,
        "Celery broker, redis://... or amqp://user:pass@host:5672// (unset: the run's Redis; "
        "timings always go to Redis)",
        type=broker_url,
    )
    env_option(
        p,
        "--brokers",
        "JOBBENCH_BROKERS",
        None,
        "compare brokers: each Celery model runs once per entry, 'redis' (the run's Redis) or a "
        "URL; rows are named celery_<pool>@amqp etc.",
        type=broker_list,
    )
    env_flag(
        p,
        "--external-workers",
        "JOBBENCH_EXTERNAL_WORKERS",
        "Celery: start no worker; publish to QUEUE.<pool> and measure the workers consuming it "
        "(docker compose services, other machines)",
    )
    env_option(
        p,
        "--queue",
        "JOBBENCH_QUEUE",
        "jobbench",
        "with --external-workers: queue prefix, pool P is consumed from QUEUE.P",
        type=queue_prefix,
    )
    env_option(
        p,
        "--external-wait-s",
        "JOBBENCH_EXTERNAL_WAIT_S",
        60.0,
        "with --external-workers: seconds to wait for a worker on each queue",
        type=bounded(float, 0.1, 3600.0),
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress output")


def cmd_bench(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from producer.bench import Bench, BenchConfig
    from producer.report import build_report
    from producer.results import JOBS_FILE, check_writable, write_jobs_csv, write_run
    from producer.table import print_table
    from producer.targets import print_targets
    from shared.settings import Settings
    from shared.workloads import request_timeout_s

    settings = Settings.from_env()
    request_timeout_s()  # a malformed JOBBENCH_REQUEST_TIMEOUT_S is exit 2 before anything runs
    if args.broker:
        settings = replace(settings, broker_url=args.broker)
    check_writable(args.out)
    config = BenchConfig(
        models=args.models, workloads=args.workloads, io_jobs=args.io_jobs,
        cpu_jobs=args.cpu_jobs, latency_ms=args.latency_ms, jitter_ms=args.jitter_ms,
        url=args.url, repeat=args.repeat, warmup=args.warmup, shuffle=not args.no_shuffle,
        seed=args.seed, mode=args.result, out_dir=args.out,
        thread_pool_workers=args.thread_pool_workers, chunksize=args.chunksize,
        batch_size=args.batch_size, completion_timeout_s=args.timeout_s, flower=args.flower,
        brokers=args.brokers or (), external_workers=args.external_workers,
        queue_prefix=args.queue, external_wait_s=args.external_wait_s,
    )  # fmt: skip
    err = Console(stderr=True)
    with live_progress(err, enabled=not args.quiet and err.is_terminal) as progress:
        bench = Bench(config, settings, progress)
        doc = bench.run()
    run_dir = write_run(args.out, doc)
    write_jobs_csv(run_dir / JOBS_FILE, bench.job_rows())
    build_report(run_dir)
    print_table(doc)
    print_targets(doc.get("targets", {}))
    print(f"results: {run_dir / 'results.json'}")
    return EXIT_OK


@contextlib.contextmanager
def live_progress(console: Console, enabled: bool) -> Iterator[Progress | None]:
    """A progress bar over the timed repeats (model, workload, repeat) on stderr; nothing when
    ``enabled`` is false (``--quiet``, or stderr is not a terminal)."""
    if not enabled:
        yield None
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )
    from rich.progress import Progress as RichProgress

    columns = (
        SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
        MofNCompleteColumn(), TextColumn("repeats"), TimeElapsedColumn(),
    )  # fmt: skip
    with RichProgress(*columns, console=console, transient=True) as bar:
        task = bar.add_task("starting", total=None)

        def update(message: str, done: int, total: int) -> None:
            bar.update(task, description=message, completed=done, total=total)

        yield update


def cmd_target(args: argparse.Namespace) -> int:
    from producer.target import TargetConfig, serve

    serve(args.host, args.port, TargetConfig(args.latency_ms, args.jitter_ms))
    return EXIT_OK


def build_parser() -> Parser:
    parser = Parser(
        prog="jobbench",
        description="Which execution model fits this job? Measure the seed IO and CPU workloads "
        "through in-process models and Celery pools, side by side.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    bench = sub.add_parser(
        "bench",
        help="run the benchmark and write results",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_bench_options(bench)
    bench.set_defaults(func=cmd_bench)

    target = sub.add_parser("target", help="serve the local HTTP target (GET /ip after a latency)")
    env_option(target, "--host", "JOBBENCH_TARGET_HOST", "127.0.0.1", "address to bind")
    env_option(target, "--port", "JOBBENCH_TARGET_PORT", 8080, "port", type=bounded(int, 1, 65535))
    env_option(
        target,
        "--latency-ms",
        "JOBBENCH_LATENCY_MS",
        160.0,
        "latency per request",
        type=bounded(float, 0.0, 60_000.0),
    )
    env_option(
        target,
        "--jitter-ms",
        "JOBBENCH_JITTER_MS",
        0.0,
        "uniform ± jitter",
        type=bounded(float, 0.0, 60_000.0),
    )
    target.set_defaults(func=cmd_target)
    from producer import hosts, report_cli  # here, not at the top: they import this module

    report_cli.register(sub)
    hosts.register(sub)
    from producer import verify  # same reason: it imports this module

    verify.register(sub)
    from producer import overhead  # same reason: it imports this module

    overhead.register(sub)
    embedded_redis.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        # Building the parser imports the runners and the Celery app, which read the
        # environment: a malformed variable must already be a one-line error.
        parser = build_parser()
        args = parser.parse_args(argv)
        code: int = args.func(args)
        return code
    except KeyboardInterrupt:
        sys.stderr.write("jobbench: interrupted; every process it started was stopped\n")
        return EXIT_INTERRUPTED
    except (SettingsError, ServiceError) as exc:
        sys.stderr.write(f"jobbench: error: {exc}\n")
        return EXIT_USAGE
    except OSError as exc:
        sys.stderr.write(f"jobbench: error: {exc}\n")
        return EXIT_USAGE
    except RuntimeError as exc:
        # Imported here: importing the runners reads the environment (see above).
        from producer.runners.base import RunIncomplete

        if not isinstance(exc, RunIncomplete):
            raise
        sys.stderr.write(f"jobbench: jobs missing: {exc}\n")  # never silent: named, exit 1
        return EXIT_FAILURE


if __name__ == "__main__":
    sys.exit(main())
