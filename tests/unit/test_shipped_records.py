"""In-process jobs hand back their record's field values; records are built after the window."""

from __future__ import annotations

import pickle

from producer.runners.jobs import job_args, run_chunk, run_job, shipped
from shared.timings import RECORD_FIELDS, JobRecord, ShippedRecords, stored_records, timed_job


def test_a_job_ships_a_tuple_in_wire_order_not_a_record() -> None:
    values = run_job(job_args("process_pool", "cpu", [30], "digest")[0])
    assert type(values) is tuple and len(values) == len(RECORD_FIELDS)
    record = JobRecord(*values)
    expected = timed_job(0, "cpu", 30, model="process_pool", pool="process_pool")
    same = ("job_id", "workload", "model", "pool", "host", "pid", "attempt", "outcome", "output")
    assert all(getattr(record, f) == getattr(expected, f) for f in same)
    # What crosses a process boundary is a plain tuple: no class to resolve, no per-field setattr.
    assert b"JobRecord" not in pickle.dumps(values)


def test_shipped_records_build_once_on_first_use_and_slice() -> None:
    jobs = job_args("multiprocessing_pool", "cpu", [10, 20, 30], "digest")
    records = shipped(run_chunk(jobs))
    assert isinstance(records, ShippedRecords) and len(records) == 3
    built = list(records)
    assert all(isinstance(r, JobRecord) for r in built)
    assert [r.job_id for r in records[1:]] == [1, 2]
    assert records[0] is built[0]  # built once, not per access
    assert [r.output for r in built] == ["primes:4:7", "primes:8:19", "primes:10:29"]


def test_stored_records_are_parsed_on_first_use() -> None:
    made = [timed_job(i, "cpu", 10 + i, model="celery_solo", pool="solo") for i in range(3)]
    raw = [r.to_json().encode() for r in made]
    records = stored_records(raw)
    assert len(records) == 3  # counted without parsing
    assert list(records) == made and records[2] == made[2]
