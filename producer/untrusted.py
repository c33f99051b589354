"""Text and files jobbench did not write itself, or that a user may have crafted: a results.json
loaded with bounds, and control characters escaped before they reach a terminal or report.md.

A results.json (or a run summary in Redis) is read by ``report``, ``compare``, ``verify`` and
``history``. Hostile or damaged, it must cost one line about that file, never a traceback and never
the listing of every other run: it is refused when larger than ``MAX_JSON_BYTES``, nested deeper
than ``MAX_JSON_DEPTH`` or holding ``NaN``/``Infinity`` (not JSON, and a NaN median would sort
anywhere). Every string of a loaded document then has its control characters escaped
(``printable``), so an escape sequence in a crafted file is shown as ``\\x1b``, not obeyed.
"""

from __future__ import annotations

import json
import re
from typing import Any

#: Largest results document read (bytes). A 15,000-job run with every model writes ~60 KB; a
#: document a thousand times larger is not one jobbench wrote.
MAX_JSON_BYTES = 64 * 1024 * 1024
#: Deepest nesting accepted. jobbench writes at most ~6 levels; Python's parser itself gives up
#: near 1,000 (a RecursionError), and every reader below walks documents recursively.
MAX_JSON_DEPTH = 64

#: C0 controls (but not tab), DEL and C1 controls, and the Unicode line/paragraph separators:
#: what a terminal obeys or what breaks a one-line message or a Markdown table row.
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029]")


class UntrustedJSONError(ValueError):
    """The text is not a results document jobbench can read safely (why in the message)."""


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def printable(text: str) -> str:
    """``text`` with every control character written as an escape (``\\x1b``, ``\\n``→``\\x0a``):
    safe for a terminal, a one-line message and a Markdown table cell."""
    return _CONTROL.sub(_escape, text)


def has_control(text: str) -> bool:
    """Whether ``text`` holds a character ``printable`` would escape."""
    return _CONTROL.search(text) is not None


def _reject_constant(name: str) -> Any:
    raise UntrustedJSONError(f"holds {name}, which is not JSON")


def depth(value: Any) -> int:
    """Nesting depth of a JSON value (a scalar is 0), without recursion."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, level + 1)
        if deepest > MAX_JSON_DEPTH:
            return deepest
        stack.extend((child, level + 1) for child in children)
    return deepest


def _clean(value: Any) -> Any:
    """A copy of a parsed document (depth already bounded) with every string made printable."""
    if isinstance(value, str):
        return printable(value)
    if isinstance(value, dict):
        return {printable(str(k)): _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def loads(text: str | bytes, *, max_bytes: int = MAX_JSON_BYTES) -> Any:
    """Parse JSON from a source jobbench does not trust: bounded in size and depth, no NaN or
    Infinity, strings made printable. ``UntrustedJSONError`` says why it was refused."""
    if len(text) > max_bytes:
        raise UntrustedJSONError(f"larger than {max_bytes // (1024 * 1024)} MiB")
    try:
        value = json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        raise UntrustedJSONError(f"nested deeper than {MAX_JSON_DEPTH} levels") from None
    except UnicodeDecodeError as exc:
        raise UntrustedJSONError(f"not UTF-8 ({exc.reason})") from None
    except json.JSONDecodeError as exc:
        raise UntrustedJSONError(f"not JSON ({exc.msg} at line {exc.lineno})") from None
    if depth(value) > MAX_JSON_DEPTH:
        raise UntrustedJSONError(f"nested deeper than {MAX_JSON_DEPTH} levels")
    return _clean(value)
