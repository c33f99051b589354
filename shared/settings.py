"""Settings shared by the producer and the workers, read from the environment.

Conventional variable names are used so the same values work for Celery, Flower and compose:
``REDIS_URL`` (timing store, and broker unless ``CELERY_BROKER_URL`` is set). Every variable is
read through ``env_value`` (and ``env_flag`` for on/off ones): blank means unset everywhere.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

#: Redis used when the user sets nothing; if it is unreachable the producer starts an embedded one.
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"

#: URL schemes accepted for the timing store.
REDIS_SCHEMES = frozenset({"redis", "rediss", "unix"})
#: URL schemes accepted for the Celery broker (Redis or RabbitMQ).
BROKER_SCHEMES = REDIS_SCHEMES | {"amqp", "amqps", "pyamqp"}


class SettingsError(ValueError):
    """A setting from the environment or the command line is malformed (one-line message)."""


#: Values an on/off environment variable may take.
TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
FALSE_WORDS = frozenset({"0", "false", "no", "off"})


def env_value(name: str, env: Mapping[str, str] | None = None) -> str | None:
    """The variable ``name``, stripped; None when unset or blank (a blank value means unset)."""
    raw = (os.environ if env is None else env).get(name, "").strip()
    return raw or None


def env_flag(name: str, env: Mapping[str, str] | None = None) -> bool | None:
    """An on/off variable: 1/true/yes/on, 0/false/no/off (any case), None when unset."""
    raw = env_value(name, env)
    if raw is None:
        return None
    word = raw.lower()
    if word not in TRUE_WORDS | FALSE_WORDS:
        raise SettingsError(f"{name} must be 1/0, true/false, yes/no or on/off: got {raw!r}")
    return word in TRUE_WORDS


#: scheme://userinfo@rest, userinfo running to the *last* "@": a raw password may hold "/", "?",
#: "#" or "@", which would fool urlsplit into leaking it as a path or query.
_USERINFO = re.compile(
    r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>.*)@(?P<rest>.*)$", re.S
)


#: A password passed as a query parameter (redis-py and kombu both read ``?password=``).
_QUERY_PASSWORD = re.compile(r"(?i)([?&](?:password|passwd|pass|pwd)=)[^&#]*")


def redact_url(url: str) -> str:
    """Return ``url`` with any password replaced by ``***`` (user names are kept)."""
    url = _QUERY_PASSWORD.sub(r"\1***", url)
    m = _USERINFO.match(url)
    if m is None:
        # Not scheme://userinfo@host, yet an "@": a mistyped URL ("redis:/:pw@h", "://:pw@h")
        # may still carry a password before it, so nothing before the last "@" is shown.
        return "***@" + url.rsplit("@", 1)[1] if "@" in url else url
    if ":" not in m["userinfo"]:
        return url
    user = m["userinfo"].split(":", 1)[0]
    return f"{m['scheme']}{user}:***@{m['rest']}"


def validate_url(url: str, schemes: frozenset[str], what: str) -> str:
    """Check that ``url`` has one of ``schemes`` and a host (or a path for unix sockets)."""
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises ValueError on a non-numeric port
    except ValueError:
        raise SettingsError(f"{what} is malformed: {redact_url(url)!r}") from None
    if parts.scheme not in schemes:
        allowed = ", ".join(sorted(schemes))
        raise SettingsError(
            f"{what} must use one of the schemes {allowed}: got {redact_url(url)!r}"
        )
    if parts.scheme == "unix":
        if not parts.path:
            raise SettingsError(f"{what} has no socket path: {redact_url(url)!r}")
    elif not parts.hostname:
        raise SettingsError(f"{what} has no host: {redact_url(url)!r}")
    return url


def validate_http_url(url: str, what: str = "--url") -> str:
    """Check that ``url`` is an absolute http(s) URL with a host."""
    return validate_url(url, frozenset({"http", "https"}), what)


@dataclass(frozen=True)
class Settings:
    """Connection settings; ``redis_url_explicit`` says whether the user chose the Redis URL."""

    redis_url: str = DEFAULT_REDIS_URL
    redis_url_explicit: bool = False
    broker_url: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        raw_redis = env_value("REDIS_URL", env)
        redis_url = validate_url(raw_redis, REDIS_SCHEMES, "REDIS_URL") if raw_redis else None
        raw_broker = env_value("CELERY_BROKER_URL", env)
        broker = (
            validate_url(raw_broker, BROKER_SCHEMES, "CELERY_BROKER_URL") if raw_broker else None
        )
        return cls(
            redis_url=redis_url or DEFAULT_REDIS_URL,
            redis_url_explicit=redis_url is not None,
            broker_url=broker,
        )

    @property
    def effective_broker_url(self) -> str:
        """The Celery broker: ``CELERY_BROKER_URL`` if set, else the timing Redis."""
        return self.broker_url or self.redis_url

    def redacted(self) -> dict[str, str | bool | None]:
        """A dict safe to print or store in results metadata."""
        return {
            "redis_url": redact_url(self.redis_url),
            "redis_url_explicit": self.redis_url_explicit,
            "broker_url": redact_url(self.effective_broker_url),
        }
