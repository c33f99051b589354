"""Baselines as users write them (issue 14): every model passes the libraries it drives their
default settings, unless it is a named variant that says ``tuned = True``.

Each model declares the library calls it configures (``Runner.settings``) and builds those calls
from the declaration (``Runner.kwargs_for``), so comparing the declaration with each callable's
signature compares what the model really passes.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from typing import Any

import pytest

from producer.runners import registry
from producer.runners.base import LibraryCall


def resolve(target: str) -> Callable[..., Any]:
    module, _, qualname = target.partition(":")
    obj: Any = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj  # type: ignore[no-any-return]


def drift(call: LibraryCall) -> dict[str, tuple[Any, Any]]:
    """Argument -> (passed, library default) for every argument that is not the default."""
    params = inspect.signature(resolve(call.target)).parameters
    out = {}
    for name, value in call.kwargs.items():
        assert name in params, f"{call.target} takes no argument {name!r}"
        default = params[name].default
        if value != default:
            out[name] = (value, default)
    return out


AVAILABLE = [n for n in registry.names() if registry.load(n).available() is None]


@pytest.mark.parametrize("model", AVAILABLE)
def test_settings_are_library_defaults_unless_named_tuned(model: str) -> None:
    cls = registry.load(model)
    drifted = {call.target: d for call in cls.settings if (d := drift(call))}
    if cls.tuned:
        assert drifted, f"{model} says tuned but passes only library defaults"
    else:
        assert not drifted, f"{model} departs from the library defaults: {drifted}"


def test_a_tuned_model_is_a_variant_shown_beside_its_default() -> None:
    tuned = [n for n in AVAILABLE if registry.load(n).tuned]
    assert set(tuned) >= {"process_pool_map", "asyncio_unbounded"}
    assert not registry.load("asyncio_unbounded").default  # the default run is unchanged


def test_the_drift_check_catches_a_changed_default() -> None:
    """The check itself can fail: the setting the harness once used for asyncio is drift."""
    import httpx

    handicap = LibraryCall(
        "httpx:AsyncClient",
        {"limits": httpx.Limits(max_connections=100, max_keepalive_connections=100)},
    )
    assert "limits" in drift(handicap)
    assert drift(LibraryCall("concurrent.futures:ThreadPoolExecutor", {"max_workers": 8}))
    assert not drift(LibraryCall("multiprocessing.pool:Pool.map", {"chunksize": None}))


def test_user_options_override_only_what_they_name() -> None:
    cls = registry.load("thread_pool")
    executor = "concurrent.futures:ThreadPoolExecutor"
    assert cls.kwargs_for(executor) == {"max_workers": None}
    assert cls.kwargs_for(executor, max_workers=4) == {"max_workers": 4}
    with pytest.raises(TypeError):
        cls.kwargs_for(executor, thread_name_prefix="x")
