"""The package versions every result's metadata carries (a leaf: the bench, ``jobbench
overhead`` and the machine costs all read it)."""

from __future__ import annotations

from importlib import metadata

#: Packages whose versions go into every result's metadata.
REPORTED_PACKAGES = ("celery", "kombu", "redis", "requests", "httpx", "flower", "uvicorn")


def package_versions() -> dict[str, str]:
    versions = {}
    for name in ("jobbench", *REPORTED_PACKAGES):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions
