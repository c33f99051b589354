"""``jobbench calibrate``: every in-process model against its bare reference (harness cost)."""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

from producer.calibrate import (
    MAX_RATIO,
    CalibrationSpec,
    calibrate,
    calibrated_models,
    calibration_lines,
)
from producer.cli.options import (
    Subparsers,
    add_command,
    add_options,
    add_quiet,
    bounded,
    choice_list,
    config_from,
    option,
    out_option,
    workloads_option,
)
from producer.console import live_status, make_console
from producer.errors import EXIT_FAILURE, EXIT_OK
from producer.results import atomic_write, check_writable
from producer.services import DEFAULT_LATENCY_MS
from shared.workloads import DEFAULT_CPU_JOBS, DEFAULT_IO_JOBS, WORKLOADS

EPILOG = """examples:
  jobbench calibrate                               # every in-process model, both workloads
  jobbench calibrate --models asyncio,threading --workloads io --repeat 7
  jobbench calibrate --check                       # exit 1 when a model misses the 5 % goal
"""

#: CPU jobs per calibration run: the seed's own (what the bench's verdicts rest on). At 3,000
#: smaller jobs (n over 1000-4000, a pool's run 0.2 s) the harness cost a steady 7-14 ms a run,
#: not a job (the job-side harness measured -0.7 us a job), i.e. 3-7 %; on the seed's 15,000
#: the same is ~2 % (docs/performance.md, "On a quieter host"). ``--cpu-jobs 3000`` still runs it.
CALIBRATE_CPU_JOBS = DEFAULT_CPU_JOBS


@dataclass(frozen=True)
class CalibrateOptions:
    """One ``jobbench calibrate`` run; each field is also its option."""

    models: tuple[str, ...] = option(
        (), "comma-separated models (default: every in-process model with a reference)",
        env="JOBBENCH_CALIBRATE_MODELS", type=choice_list(calibrated_models(), "model"),
    )  # fmt: skip
    workloads: tuple[str, ...] = workloads_option(WORKLOADS, WORKLOADS)
    io_jobs: int = option(
        DEFAULT_IO_JOBS, "HTTP requests per IO run",
        env="JOBBENCH_CALIBRATE_IO_JOBS", type=bounded(int, 1, 100_000),
    )  # fmt: skip
    cpu_jobs: int = option(
        CALIBRATE_CPU_JOBS, "CPU jobs: get_prime_numbers(n) for n in range(1000, 1000+N)",
        env="JOBBENCH_CALIBRATE_CPU_JOBS", type=bounded(int, 1, 1_000_000),
    )  # fmt: skip
    latency_ms: float = option(DEFAULT_LATENCY_MS, "latency of the local HTTP target",
                               env="JOBBENCH_CALIBRATE_LATENCY_MS",
                               type=bounded(float, 0.0, 60_000.0))  # fmt: skip
    repeat: int = option(5, "interleaved repeats of harness and reference per model",
                         env="JOBBENCH_CALIBRATE_REPEAT", type=bounded(int, 1, 100))  # fmt: skip
    out_dir: Path = out_option("directory for calibrate-<id>.json")
    check: bool = option(False, f"exit 1 unless every model is within {MAX_RATIO:g}x of its "
                         "reference (verdict met)", kind="flag")  # fmt: skip


def register(sub: Subparsers) -> None:
    p = add_command(sub, "calibrate",
                    "each in-process model against the bare code a user writes: harness cost",
                    EPILOG)  # fmt: skip
    add_options(p, CalibrateOptions)
    add_quiet(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    opts = config_from(CalibrateOptions, args)
    check_writable(opts.out_dir)
    spec = CalibrationSpec(
        models=opts.models or tuple(calibrated_models()),
        workloads=opts.workloads,
        io_jobs=opts.io_jobs, cpu_jobs=opts.cpu_jobs, latency_ms=opts.latency_ms,
        repeat=opts.repeat,
    )  # fmt: skip
    err = make_console(stderr=True)
    with live_status(err, enabled=not args.quiet and err.is_terminal) as say:
        doc = calibrate(spec, say)
    opts.out_dir.mkdir(parents=True, exist_ok=True)
    path = opts.out_dir / f"calibrate-{doc['run_id']}.json"
    atomic_write(path, json.dumps(doc, indent=2))
    for line in calibration_lines(doc):
        print(line)
    print(f"calibration: {path}")
    missed = [r for r in doc["results"] if r["verdict"] != "met"]
    return EXIT_FAILURE if opts.check and missed else EXIT_OK
