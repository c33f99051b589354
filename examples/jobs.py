"""Example jobs for ``jobbench bench --job examples.jobs:FUNCTION --args examples/NAME.jsonl``.

Plain functions, as a user writes them: nothing here knows about jobbench, except that the IO
jobs find the local HTTP target in ``JOBBENCH_TARGET_URL`` (``--with-target`` starts it).

- ``resize``: CPU-bound, pure Python: a nearest-neighbour downscale of a generated greyscale
  image and a checksum of the result (``examples/resize.jsonl``).
- ``fetch``: IO-bound, one GET of the target with ``requests`` (``examples/fetch.jsonl``).
- ``fetch_and_resize``: both, one after the other (``examples/mixed.jsonl``).
- ``fetch_async``: ``async def``, one GET with ``httpx.AsyncClient`` (``examples/fetch.jsonl``):
  the asyncio model gathers it; every other model runs it on an event loop per worker thread.
"""

from __future__ import annotations

import os
from typing import Any

import httpx
import requests

#: Where the IO jobs send their GET when jobbench started the target (``--with-target``).
TARGET_URL_ENV = "JOBBENCH_TARGET_URL"


def target_url(path: str | None = None) -> str:
    url = os.environ.get(TARGET_URL_ENV)
    if not url:
        raise RuntimeError(f"{TARGET_URL_ENV} is not set: run with --with-target (or --url)")
    return url if path is None else url.rsplit("/", 1)[0] + path


def resize(width: int, height: int, scale: int = 2) -> dict[str, int]:
    """Downscale a generated ``width`` x ``height`` image by ``scale``; its size and checksum."""
    pixels = [[(x * 7 + y * 13) % 256 for x in range(width)] for y in range(height)]
    out_w, out_h = width // scale, height // scale
    small = [[pixels[y * scale][x * scale] for x in range(out_w)] for y in range(out_h)]
    checksum = 0
    for row in small:
        for value in row:
            checksum = (checksum * 31 + value) % 1_000_000_007
    return {"width": out_w, "height": out_h, "checksum": checksum}


def fetch(path: str | None = None) -> dict[str, Any]:
    """One GET of the local target: its status and body length."""
    response = requests.get(target_url(path), timeout=10)
    response.raise_for_status()
    return {"status": response.status_code, "bytes": len(response.content)}


def fetch_and_resize(width: int, height: int, scale: int = 2) -> dict[str, Any]:
    """A request, then some CPU work on what came back (here: a generated image)."""
    return {**fetch(), **resize(width, height, scale)}


async def fetch_async(path: str | None = None) -> dict[str, Any]:
    """``fetch`` with ``async def`` and httpx."""
    async with httpx.AsyncClient() as client:
        response = await client.get(target_url(path), timeout=10)
        response.raise_for_status()
        return {"status": response.status_code, "bytes": len(response.content)}
