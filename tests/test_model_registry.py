"""Model discovery (``producer.runners.registry``) and the hooks through which models own their
behaviour: lazy loading, variants, availability, the facts stored in result rows."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from producer.bench import Bench, BenchConfig
from producer.runners import registry
from producer.runners.base import ModelUnavailable, Runner, options_for
from producer.runners.celery.models import CeleryOptions
from producer.runners.facts import facts
from shared.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


def test_a_process_pool_child_imports_the_job_path_alone() -> None:
    """Under spawn/forkserver every pool child imports ``producer.runners.jobs``: it must not
    pay for Celery or any other model to run a sieve."""
    code = (
        "import sys; import producer.runners.jobs; "
        "assert 'celery' not in sys.modules, 'celery imported'; "
        "loaded = [m for m in sys.modules if m.startswith('producer.runners.') "
        "and m not in ('producer.runners.jobs', 'producer.runners.base', "
        "'producer.runners.registry')]; "
        "assert not loaded, loaded"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr


def test_loading_one_model_imports_only_its_module() -> None:
    code = (
        "import sys; from producer.runners import registry; "
        "assert 'celery_prefork' in registry.names(); "
        "assert registry.load('sequential').baseline; "
        "assert 'celery' not in sys.modules, 'celery imported'; "
        "assert 'producer.runners.asyncio_gather' not in sys.modules"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr


def test_every_module_model_is_found_under_its_name() -> None:
    for name in registry.names():
        cls = registry.load(name)
        assert issubclass(cls, Runner) and cls.name == name
    assert registry.default_models() == (
        "sequential", "threading", "thread_pool", "asyncio", "multiprocessing_pool",
        "multiprocessing_pool_factoring", "process_pool", "process_pool_map", "celery_prefork",
        "celery_prefork_factoring", "celery_threads", "celery_solo", "celery_solo_asyncio",
    )  # fmt: skip
    assert sum(registry.load(n).baseline for n in registry.names()) == 1
    assert registry.runner_class("celery_prefork@amqp") is registry.load("celery_prefork")
    assert registry.find("no_such_model@x") is None


def test_a_model_unavailable_here_is_never_a_default_and_asking_for_it_is_bad_input() -> None:
    for name, why in registry.unavailable().items():
        assert why and name not in registry.default_models()
        with pytest.raises(ModelUnavailable, match=f"{name} is not available"):
            Bench(BenchConfig(models=("sequential", name)), Settings())


def test_models_read_their_own_options_from_the_config() -> None:
    config = BenchConfig(batch_size=7, queue_prefix="q", brokers=("redis",))
    celery = options_for(config, CeleryOptions)
    assert (celery.batch_size, celery.queue_prefix, celery.brokers) == (7, "q", ("redis",))
    # Every Celery option but the per-variant ones is a field of the config: none is lost.
    config_fields = set(BenchConfig.__dataclass_fields__)
    own = set(CeleryOptions.__dataclass_fields__) - {"broker_url", "broker_label"}
    assert own <= config_fields


def test_rows_carry_the_facts_their_readers_need() -> None:
    old = {"workload": "cpu", "model": "sequential", "family": "in-process"}
    assert facts(old).baseline and not facts(old).in_timeline  # from the class, by name
    celery = {"workload": "cpu", "model": "celery_solo@amqp", "family": "celery",
              "params": {"batch_size": 3}, "extra": {"enqueue_s": {"median": 0.5}}}  # fmt: skip
    about = facts(celery)
    assert about.notes == ("enqueue 0.50s", "batch 3") and about.caveat
    unknown = {"workload": "io", "model": "gone", "family": "x"}
    assert facts(unknown) == facts({**unknown, "baseline": False, "in_timeline": True,
                                    "notes": [], "caveat": None})  # fmt: skip


def test_nothing_outside_a_model_branches_on_its_family_or_name() -> None:
    """Issue 11's check: no ``family ==``, no ``== "celery`` and no ``"sequential"`` in any
    module of ``producer`` but the models' own."""
    model_files = {
        ROOT / (target.partition(":")[0].replace(".", "/") + ".py")
        for target in registry.aliases().values()
    }
    offenders = []
    for path in sorted((ROOT / "producer").rglob("*.py")):
        if path in model_files:
            continue
        text = path.read_text(encoding="utf-8")
        for pattern in (r"family\s*[!=]=", r"[!=]=\s*\"celery", r"\"sequential\""):
            found = re.finditer(pattern, text)
            offenders += [f"{path.relative_to(ROOT)}: {m.group()}" for m in found]
    assert not offenders
