"""Units for settings parsing and secret redaction (property-based where it pays)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.settings import (
    DEFAULT_REDIS_URL,
    REDIS_SCHEMES,
    Settings,
    SettingsError,
    redact_url,
    validate_http_url,
    validate_url,
)

secrets = st.text(
    alphabet=st.characters(min_codepoint=48, max_codepoint=122), min_size=4, max_size=30
)


@given(password=secrets, user=st.sampled_from(["", "bench"]))
def test_redact_never_shows_the_password(password: str, user: str) -> None:
    url = f"redis://{user}:{password}@10.1.2.3:6380/2"
    shown = redact_url(url)
    assert password not in shown.replace("10.1.2.3:6380", "")
    assert shown.startswith(f"redis://{user}:***@10.1.2.3:6380")


def test_url_without_password_is_unchanged() -> None:
    assert redact_url("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"


def test_defaults_when_nothing_is_set() -> None:
    s = Settings.from_env({})
    assert s.redis_url == DEFAULT_REDIS_URL and not s.redis_url_explicit
    assert s.effective_broker_url == DEFAULT_REDIS_URL


def test_explicit_urls_are_kept_and_redacted_in_metadata() -> None:
    s = Settings.from_env(
        {"REDIS_URL": "redis://:pw@h:1/0", "CELERY_BROKER_URL": "amqp://g:pw@h//"}
    )
    assert s.redis_url_explicit and s.broker_url == "amqp://g:pw@h//"
    assert "pw" not in str(s.redacted())


@pytest.mark.parametrize(
    "url", ["http://x", "redis//nohost", "redis://", "redis://h:notaport/0", "ftp://h", "unix://"]
)
def test_malformed_redis_urls_are_rejected(url: str) -> None:
    with pytest.raises(SettingsError):
        validate_url(url, REDIS_SCHEMES, "REDIS_URL")


@given(st.text(max_size=40))
def test_http_url_validation_never_crashes(text: str) -> None:
    try:
        assert validate_http_url(text).startswith(("http://", "https://"))
    except SettingsError as exc:
        assert "\n" not in str(exc)
