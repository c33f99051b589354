"""The bare references run the same jobs in a fresh interpreter and time them."""

from __future__ import annotations

import pytest

from producer.references import MODELS, ReferenceFailed, run_reference, time_reference
from producer.services import Target


@pytest.mark.parametrize("model", [m for m in MODELS if m != "asyncio"])
def test_every_cpu_reference_times_each_repeat(model: str) -> None:
    walls = time_reference(model, "cpu", [1000 + i for i in range(40)], repeat=2)
    assert len(walls) == 2 and all(w > 0 for w in walls)


@pytest.mark.integration
@pytest.mark.parametrize("model", MODELS)
def test_every_io_reference_runs_in_a_fresh_interpreter(model: str, target: Target) -> None:
    # 8 requests at the target's 20 ms: concurrent references finish well under 8 x 20 ms.
    walls = run_reference(model, "io", [target.url] * 8, repeat=1)
    assert len(walls) == 1
    if model == "sequential":
        assert walls[0] >= 8 * 0.020
    else:
        assert walls[0] > 0.020


def test_a_failing_reference_is_one_line() -> None:
    with pytest.raises(ReferenceFailed, match="exited 1: KeyError"):
        run_reference("no_such_model", "cpu", [1000], repeat=1)
