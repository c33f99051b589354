"""The bare references run the same jobs in a fresh interpreter and time them."""

from __future__ import annotations

import pytest

from producer.references import ReferenceFailed, has_reference, run_reference, time_reference
from producer.runners import registry
from producer.services import Target

#: Every model with a reference (the in-process ones available here).
REFERENCED = [
    n for n in registry.names() if registry.load(n).available() is None and has_reference(n)
]


def test_every_available_in_process_model_has_a_reference() -> None:
    for name in registry.names():
        cls = registry.load(name)
        if cls.available() is None and not cls.stores_own_records:
            assert cls.reference() is not None, f"{name} has no bare reference to calibrate against"


@pytest.mark.parametrize("model", [m for m in REFERENCED if "cpu" in registry.load(m).workloads])
def test_every_cpu_reference_times_each_repeat(model: str) -> None:
    walls = time_reference(model, "cpu", [1000 + i for i in range(40)], repeat=2)
    assert len(walls) == 2 and all(w > 0 for w in walls)


@pytest.mark.integration
@pytest.mark.parametrize("model", REFERENCED)
def test_every_io_reference_runs_in_a_fresh_interpreter(model: str, target: Target) -> None:
    # 8 requests at the target's 20 ms: sequential needs 8 x 20 ms, the others overlap them.
    walls = run_reference(model, "io", [target.url] * 8, repeat=1)
    assert len(walls) == 1
    assert walls[0] >= (8 * 0.020 if registry.load(model).baseline else 0.020)


def test_a_failing_reference_is_one_line() -> None:
    with pytest.raises(ReferenceFailed, match="exited 1: KeyError"):
        run_reference("no_such_model", "cpu", [1000], repeat=1)
