"""Finding the execution models by name, lazily.

Like Celery's pool ``ALIASES`` (``"prefork": "celery.concurrency.prefork:TaskPool"``), the
registry is a map of model name -> ``"module:Class"``, and a model's module is imported only when
that model is asked for: a process-pool child that imports ``producer.runners.jobs`` imports no
other model and no Celery, and ``load("thread_pool")`` imports that one model alone.

The map is not written by hand. It is read from the source of every module under
``producer/runners/`` (without importing it, as flit reads a module's ``__version__``): each
class whose body assigns ``name = "<literal>"`` is a model under that name. So adding a model is
adding one file. Models of other packages join through the ``jobbench.models`` entry-point
group (``name = "package.module:Class"``).
"""

from __future__ import annotations

import ast
import functools
import importlib
import re
from collections.abc import Iterator, Mapping
from importlib import metadata
from pathlib import Path

from producer.runners.base import ModelUnavailable, Runner, base_name

#: The entry-point group through which other packages add models.
ENTRY_POINT_GROUP = "jobbench.models"
#: The package whose modules are scanned for models.
PACKAGE = "producer.runners"
_PACKAGE_DIR = Path(__file__).resolve().parent


#: A line that may name a model; only files holding one are parsed.
_NAME_LINE = re.compile(r"^\s+name\s*=\s*[\"']", re.MULTILINE)


def _models_in(path: Path, module: str) -> Iterator[tuple[str, str]]:
    """(model name, "module:Class") for every class of ``path`` that assigns ``name`` a string."""
    text = path.read_text(encoding="utf-8")
    if not _NAME_LINE.search(text):
        return
    tree = ast.parse(text, str(path))
    for node in tree.body:
        if not isinstance(node, ast.ClassDef):
            continue
        for stmt in node.body:
            if (
                isinstance(stmt, ast.Assign)
                and [getattr(t, "id", None) for t in stmt.targets] == ["name"]
                and isinstance(stmt.value, ast.Constant)
                and isinstance(stmt.value.value, str)
            ):
                yield stmt.value.value, f"{module}:{node.name}"


@functools.cache
def aliases() -> dict[str, str]:
    """Model name -> ``"module:Class"``, from the source files and the entry points."""
    found: dict[str, str] = {}
    for path in sorted(_PACKAGE_DIR.rglob("*.py")):
        parts = path.relative_to(_PACKAGE_DIR).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        module = ".".join((PACKAGE, *parts))
        for name, target in _models_in(path, module):
            if name in found:
                raise ValueError(f"model {name!r} defined twice: {found[name]} and {target}")
            found[name] = target
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        found.setdefault(ep.name, ep.value)
    return found


def names() -> list[str]:
    """Every model name, in alphabetical order (nothing imported)."""
    return sorted(aliases())


@functools.cache
def load(name: str) -> type[Runner]:
    """The runner class of model ``name`` (``KeyError`` for an unknown one); imports its module."""
    module, _, qualname = aliases()[name].partition(":")
    cls: object = importlib.import_module(module)
    for part in qualname.split("."):
        cls = getattr(cls, part)
    if not (isinstance(cls, type) and issubclass(cls, Runner)) or cls.name != name:
        raise TypeError(f"{aliases()[name]} is not the Runner of model {name!r}")
    return cls


def find(model: str) -> type[Runner] | None:
    """The runner class of a row's model name (a variant ``name@label`` included), or None when
    no such model exists here (a results file written by another version)."""
    name = base_name(model)
    return load(name) if name in aliases() else None


def runner_class(model: str) -> type[Runner]:
    """The runner class of a row's model name, a variant included (``KeyError`` if unknown)."""
    return load(base_name(model))


def ordered(models: list[str] | tuple[str, ...]) -> list[str]:
    """``models`` in display order (each model's ``order``, then its name)."""
    return sorted(models, key=lambda m: (load(m).order, m))


def default_models() -> tuple[str, ...]:
    """What a plain ``jobbench bench`` runs: the default models available here, in order."""
    return tuple(ordered([n for n in names() if load(n).default and load(n).available() is None]))


def unavailable() -> dict[str, str]:
    """Model name -> why it cannot run here (Python too old, ...), for every such model."""
    out = {}
    for n in names():
        why = load(n).available()
        if why is not None:
            out[n] = why
    return out


def require_available(models: list[str] | tuple[str, ...]) -> None:
    """Raise ``ModelUnavailable`` (one line, exit 2) for the first model that cannot run here."""
    for name in models:
        why = load(name).available()
        if why is not None:
            raise ModelUnavailable(f"model {name} is not available here: {why}")


class _Runners(Mapping[str, type[Runner]]):
    """``RUNNERS[name]``: the registry as a read-only mapping, loading a model when indexed."""

    def __getitem__(self, name: str) -> type[Runner]:
        return load(name)

    def __iter__(self) -> Iterator[str]:
        return iter(names())

    def __len__(self) -> int:
        return len(aliases())

    def __contains__(self, name: object) -> bool:
        return name in aliases()


RUNNERS: Mapping[str, type[Runner]] = _Runners()
