"""``jobbench bench``: run the benchmark and write results."""

from __future__ import annotations

import argparse
import contextlib
import sys
from dataclasses import replace
from typing import Any

import kombu.exceptions
import redis

from producer import cleanup
from producer.bench import Bench, BenchConfig
from producer.calibrate import CalibrationSpec, calibrate, calibration_lines
from producer.cli.options import (
    AUTO,
    Option,
    Subparsers,
    add_command,
    add_options,
    add_quiet,
    broker_url,
    config_from,
)
from producer.console import live_progress, make_console
from producer.errors import EXIT_FAILURE, EXIT_OK, BadInput, JobbenchError, RunFailed
from producer.failures import failed_jobs
from producer.goals import print_goals
from producer.references import has_reference
from producer.report import build_report
from producer.results import (
    JOBS_FILE,
    RESULTS_FILE,
    STATUS_COMPLETE,
    STATUS_FAILED,
    STATUS_INTERRUPTED,
    check_writable,
    update_latest,
    write_jobs_csv,
    write_run,
)
from producer.runners.base import RunIncomplete
from producer.table import print_table
from producer.untrusted import printable
from producer.userjob import skipped_models
from shared import jobspec
from shared.settings import Settings, redact_url
from shared.workloads import request_timeout_s

EPILOG = """examples:
  jobbench bench                                   # the default run: every model, both workloads
  jobbench bench --workloads io --io-jobs 500 --latency-ms 50
  jobbench bench --models sequential,multiprocessing_pool,celery_prefork --cpu-jobs 2000
  jobbench bench --url https://httpbin.org/ip --workloads io
  REDIS_URL=redis://:secret@10.0.0.5:6379/1 jobbench bench
  jobbench bench --external-workers --queue jobbench   # measure workers started elsewhere
  jobbench bench --brokers redis,amqp://guest:guest@127.0.0.1:5672// --models celery_threads
  jobbench bench --job examples.jobs:resize --args examples/resize.jsonl   # your own job
  jobbench bench --job examples.jobs:fetch --args examples/fetch.jsonl --with-target
"""

#: The Celery broker of this run: not a ``BenchConfig`` field, it overrides the settings.
BROKER = Option(
    "--broker", "Celery broker, redis://... or amqp://user:pass@host:5672// (unset: the run's "
    "Redis; timings always go to Redis)", env="CELERY_BROKER_URL", type=broker_url,
)  # fmt: skip


#: Calibrate the run's in-process models too: not a ``BenchConfig`` field (it measures the
#: harness, not the models).
CALIBRATE = Option(
    "--calibrate", "also hold each in-process model of the run against its bare reference "
    "(jobbench calibrate), same workloads and sizes; stored as results.json 'calibration'",
    env="JOBBENCH_CALIBRATE", kind="flag",
)  # fmt: skip


def register(sub: Subparsers) -> None:
    p = add_command(sub, "bench", "run the benchmark and write results", EPILOG)
    add_options(p, BenchConfig)
    BROKER.add_to(p, "broker", None)
    CALIBRATE.add_to(p, "calibrate", False)
    add_quiet(p)
    p.set_defaults(handler=run)


def calibration_spec(config: BenchConfig) -> CalibrationSpec:
    """The calibration of a bench run: its models that have a reference, its sizes."""
    repeat = int(config.repeat) if config.repeat != AUTO else CALIBRATE_AUTO_REPEAT
    return CalibrationSpec(
        models=tuple(m for m in config.models if has_reference(m)), workloads=config.workloads,
        io_jobs=config.io_jobs, cpu_jobs=config.cpu_jobs, latency_ms=config.latency_ms,
        repeat=repeat,
    )  # fmt: skip


#: Repeats of ``--calibrate`` when the bench's own are ``auto``.
CALIBRATE_AUTO_REPEAT = 5


def run(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    request_timeout_s()  # a malformed JOBBENCH_REQUEST_TIMEOUT_S is exit 2 before anything runs
    if args.broker:
        settings = replace(settings, broker_url=args.broker)
    config = config_from(BenchConfig, args)
    if args.calibrate and config.job is not None and config.job not in jobspec.SEED_JOBS:
        raise BadInput("--calibrate holds the seed's workloads only, not --job")
    check_writable(config.out_dir)
    err = make_console(stderr=True)
    bench: Bench | None = None
    try:
        with live_progress(err, enabled=not args.quiet and err.is_terminal) as progress:
            bench = Bench(config, settings, progress)
            _say_skipped(bench)
            doc = bench.run()
        return _finish(bench, doc, config, args.calibrate)
    except cleanup.Interrupted as exc:
        if bench is not None:
            where = keep_evidence(bench, config, STATUS_INTERRUPTED, f"interrupted by {exc}")
            exc.message = (
                f"run {bench.run_id} interrupted by {exc.signal_name}: {where}; every process "
                "it started was stopped"
            )
        raise
    except Exception as exc:
        if bench is None or not (bench.measuring or isinstance(exc, RunIncomplete)):
            raise  # bad input or a service that never came up: nothing was measured
        if isinstance(exc, JobbenchError) and not bench.steps_done:
            raise  # a one-line error before any repeat (a worker that never came up)
        why, missing, known = _why(exc, bench)
        where = keep_evidence(bench, config, STATUS_FAILED, why, missing)
        # The run id first: whatever follows, the user knows which run to look at.
        _say(f"run {bench.run_id} failed: {where}")
        if known:
            raise RunFailed(why) from None
        raise  # a one-line JobbenchError keeps its exit code; a bug its traceback


def _say_skipped(bench: Bench) -> None:
    """A model asked for that does not run the job's kind is named, never dropped in silence
    (the asyncio model runs ``async def`` jobs only; the IO levers the seed's IO job only)."""
    for workload in bench.config.workloads:
        if not jobspec.is_user_job(workload):
            continue  # the seed's rows are as they always were (operations.md lists them)
        skipped = skipped_models(workload, bench.config.models)
        kind = jobspec.kind(workload)
        if skipped:
            _say(f"note: {workload} is a {kind} job; not run by {', '.join(skipped)}")
        if not bench.model_names(workload):
            raise BadInput(f"no model of --models runs {workload} (a {kind} job)")


def _say(text: str) -> None:
    sys.stderr.write(f"jobbench: {printable(text)}\n")
    sys.stderr.flush()


def _why(exc: Exception, bench: Bench) -> tuple[str, list[int], bool]:
    """Why a run failed, in one line; the job ids it names as missing; and whether it is a
    failure jobbench expects (jobs missing, Redis lost) rather than a bug."""
    if isinstance(exc, RunIncomplete):
        return f"jobs missing: {exc}", exc.missing, True
    if isinstance(exc, redis.RedisError | kombu.exceptions.OperationalError | ConnectionError):
        what = " ".join(str(exc).split()) or type(exc).__name__
        url = redact_url(bench.redis_url)
        return f"lost Redis at {url} mid-run ({type(exc).__name__}: {what})", [], True
    return str(exc) or type(exc).__name__, [], False


def keep_evidence(
    bench: Bench, config: BenchConfig, status: str, why: str, missing: list[int] | None = None
) -> str:
    """Write what a run that did not complete measured (status, why, what is missing) into its
    run directory; ``latest`` is left alone. Returns where, for the one line the user gets."""
    try:
        doc = bench.evidence(status, why, missing or [])
        run_dir = write_run(config.out_dir, doc)
    except (OSError, JobbenchError) as exc:
        return f"its evidence could not be written ({exc})"
    with contextlib.suppress(OSError, JobbenchError, ValueError):
        write_jobs_csv(run_dir / JOBS_FILE, bench.job_rows())
        build_report(run_dir)
    return f"evidence in {run_dir / RESULTS_FILE} (status {status})"


def _finish(
    bench: Bench, doc: dict[str, Any], config: BenchConfig, config_calibrate: bool = False
) -> int:
    """Write the run, then (everything written) point ``latest`` at it; say what failed."""
    failed = failed_jobs(doc)
    if failed and not config.allow_failures:
        listed = ", ".join(f"{k} {n}" for k, n in failed.items())
        doc = bench.evidence(STATUS_FAILED, f"jobs failed (error records): {listed}")
    if config_calibrate:
        doc["calibration"] = calibrate(calibration_spec(config))
    run_dir = write_run(config.out_dir, doc)
    write_jobs_csv(run_dir / JOBS_FILE, bench.job_rows())
    build_report(run_dir)
    print_table(doc)
    print_goals(doc.get("targets", {}))
    if "calibration" in doc:
        for line in calibration_lines(doc["calibration"]):
            print(f"calibration {line}")
    print(f"results: {run_dir / RESULTS_FILE}")
    if doc["status"] != STATUS_COMPLETE:
        _say(
            f"run {bench.run_id} failed: {doc['failure']['why']}; evidence in "
            f"{run_dir / RESULTS_FILE} (status {doc['status']}; --allow-failures accepts "
            "failed jobs)"
        )
        return EXIT_FAILURE
    # Last: `latest` never points at a run whose files are not all written.
    update_latest(config.out_dir, run_dir)
    return EXIT_OK
