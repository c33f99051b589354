"""``jobbench bench``: run the benchmark and write results."""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace

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
from producer.errors import EXIT_FAILURE, EXIT_OK
from producer.goals import print_goals
from producer.references import has_reference
from producer.report import build_report
from producer.results import JOBS_FILE, check_writable, write_jobs_csv, write_run
from producer.runners.base import RunIncomplete
from producer.table import print_table
from shared.settings import Settings
from shared.workloads import request_timeout_s

EPILOG = """examples:
  jobbench bench                                   # the default run: every model, both workloads
  jobbench bench --workloads io --io-jobs 500 --latency-ms 50
  jobbench bench --models sequential,multiprocessing_pool,celery_prefork --cpu-jobs 2000
  jobbench bench --url https://httpbin.org/ip --workloads io
  REDIS_URL=redis://:secret@10.0.0.5:6379/1 jobbench bench
  jobbench bench --external-workers --queue jobbench   # measure workers started elsewhere
  jobbench bench --brokers redis,amqp://guest:guest@127.0.0.1:5672// --models celery_threads
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
    check_writable(config.out_dir)
    err = make_console(stderr=True)
    try:
        with live_progress(err, enabled=not args.quiet and err.is_terminal) as progress:
            bench = Bench(config, settings, progress)
            doc = bench.run()
    except RunIncomplete as exc:
        sys.stderr.write(f"jobbench: jobs missing: {exc}\n")
        return EXIT_FAILURE  # never silent: the missing jobs are named, exit 1
    if args.calibrate:
        doc["calibration"] = calibrate(calibration_spec(config))
    run_dir = write_run(config.out_dir, doc)
    write_jobs_csv(run_dir / JOBS_FILE, bench.job_rows())
    build_report(run_dir)
    print_table(doc)
    print_goals(doc.get("targets", {}))
    if "calibration" in doc:
        for line in calibration_lines(doc["calibration"]):
            print(f"calibration {line}")
    print(f"results: {run_dir / 'results.json'}")
    return EXIT_OK
