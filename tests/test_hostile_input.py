"""Hostile input: the parsers hold for any text (hypothesis), and every option and environment
variable a user can get wrong is one line on stderr, exit 2, nothing written."""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from producer.cli import EXIT_USAGE, main
from producer.cli.options import bounded, choice_list, http_url
from shared.settings import (
    BROKER_SCHEMES,
    REDIS_SCHEMES,
    Settings,
    SettingsError,
    redact_url,
    validate_url,
)
from shared.workloads import MAX_REQUEST_TIMEOUT_S, redact_credentials, request_timeout_s
from worker.app import acks_late, visibility_timeout_s

#: Text that looks like what people type, and what they should not: digits, signs, exponents,
#: words, separators, whitespace, control and non-ASCII characters.
typed = st.one_of(
    st.text(max_size=30),
    st.from_regex(r"\A[-+]?[0-9_]{0,12}(\.[0-9]*)?([eE][-+]?[0-9]{1,4})?\Z"),
    st.sampled_from(["nan", "inf", "-inf", "1e400", "0x10", " 5 ", "5.0", "", "--1", "1_000"]),
    # Control characters around a number Python still parses: the error must stay one line.
    st.sampled_from(["1e9\n", "\n-7", "99999999\r", "\x0b3e5", "1e9\x1c", "\t-1\x1f"]),
)
#: A password with everything a raw one may hold, even URL syntax.
passwords = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc", "Zs")), min_size=6, max_size=24
)
hosts = st.sampled_from(["127.0.0.1", "redis", "h.example", "[::1]", "", "h:notaport", "h:99999"])


def one_line(message: str) -> bool:
    """No line break of any kind (str.splitlines also splits on \\x0b, \\x1c, \\u2028...)."""
    return len(message.splitlines()) <= 1


# --- producer.cli.options parsers ----------------------------------------------------------


@given(text=typed, lo=st.integers(-5, 5), span=st.integers(0, 10**6))
def test_bounded_int_accepts_exactly_the_range(text: str, lo: int, span: int) -> None:
    hi = lo + span
    parse = bounded(int, lo, hi)
    try:
        value = parse(text)
    except argparse.ArgumentTypeError as exc:
        assert one_line(str(exc))
        with contextlib.suppress(ValueError):  # not an integer at all
            assert not lo <= int(text) <= hi
        return
    assert isinstance(value, int) and lo <= value <= hi and value == int(text)


@given(value=st.floats(allow_nan=True, allow_infinity=True))
def test_bounded_float_rejects_nan_inf_and_out_of_range(value: float) -> None:
    parse = bounded(float, 0.0, 60_000.0)
    try:
        got = parse(repr(value))
    except argparse.ArgumentTypeError as exc:
        assert one_line(str(exc))
        assert math.isnan(value) or not 0.0 <= value <= 60_000.0
        return
    assert got == value and 0.0 <= got <= 60_000.0 and math.isfinite(got)


ALLOWED = ("sequential", "thread_pool", "celery_solo", "celery_prefork")


@given(
    items=st.lists(
        st.one_of(
            st.sampled_from(ALLOWED),
            st.text(max_size=12),
            st.sampled_from(["\x1b[31mred", "a\rb", "sequential\x00", "\u2028"]),
        ),
        max_size=6,
    ),
    sep=st.sampled_from([",", ", ", " ,", ",,"]),
)
def test_choice_list_returns_known_unique_items_or_one_line_error(
    items: list[str], sep: str
) -> None:
    text = sep.join(items)
    try:
        got = choice_list(ALLOWED, "model")(text)
    except argparse.ArgumentTypeError as exc:
        assert one_line(str(exc)) and "\x1b" not in str(exc)
        wanted = [s.strip() for s in text.split(",") if s.strip()]
        assert not wanted or any(s not in ALLOWED for s in wanted)
        return
    assert got and set(got) <= set(ALLOWED) and len(set(got)) == len(got)
    assert list(got) == list(dict.fromkeys(s.strip() for s in text.split(",") if s.strip()))


@given(text=st.one_of(st.text(max_size=40), st.from_regex(r"\A[a-z]{2,6}://\S{0,20}\Z")))
def test_http_url_accepts_only_absolute_http_urls(text: str) -> None:
    try:
        url = http_url(text)
    except argparse.ArgumentTypeError as exc:
        assert one_line(str(exc))
        return
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    assert parts.scheme in ("http", "https") and parts.hostname


# --- shared.settings ------------------------------------------------------------------------


@given(
    scheme=st.sampled_from(sorted(BROKER_SCHEMES | {"http", "redis+socket", ""})),
    user=st.sampled_from(["", "bench", "default"]),
    password=passwords,
    host=hosts,
    tail=st.sampled_from(["", "/0", "/15", "/x?y=1", "//"]),
)
def test_validate_url_never_shows_a_password(
    scheme: str, user: str, password: str, host: str, tail: str
) -> None:
    url = f"{scheme}://{user}:{password}@{host}{tail}"
    assume(password not in f"{scheme}://{user}:***@{host}{tail}")
    try:
        validate_url(url, REDIS_SCHEMES, "REDIS_URL")
    except SettingsError as exc:
        assert password not in str(exc) and one_line(str(exc))


@given(user=st.sampled_from(["", "bench"]), password=passwords, host=hosts)
def test_redact_url_hides_raw_reserved_characters_and_is_idempotent(
    user: str, password: str, host: str
) -> None:
    url = f"redis://{user}:{password}@{host}:6379/0"
    shown = redact_url(url)
    assume(password not in f"redis://{user}:***@{host}:6379/0")
    assert password not in shown
    assert redact_url(shown) == shown
    assume("&" not in password and "#" not in password)
    assert password not in redact_url(f"redis://{host}:6379/0?password={password}")
    assert redact_url(f"redis://{host}:6379/0") == f"redis://{host}:6379/0"


@given(
    before=st.text(max_size=10), user=st.sampled_from(["", "u"]), password=passwords,
    after=st.sampled_from(["h/ip", "h:80/ip for url", "127.0.0.1:1/x?y=@"]),
)  # fmt: skip
def test_error_messages_lose_url_credentials(
    before: str, user: str, password: str, after: str
) -> None:
    assume(not any(c.isspace() for c in password))
    text = f"{before} http://{user}:{password}@{after}"
    assume(password not in f"{before} http://{user}:***@{after}")
    assert password not in redact_credentials(text)


@given(redis_url=typed | st.text(max_size=40), broker_url=typed | st.text(max_size=40))
def test_settings_from_env_validates_or_says_one_line(redis_url: str, broker_url: str) -> None:
    env = {"REDIS_URL": redis_url, "CELERY_BROKER_URL": broker_url}
    try:
        settings = Settings.from_env(env)
    except SettingsError as exc:
        assert one_line(str(exc))
        return
    for url, schemes in ((settings.redis_url, REDIS_SCHEMES), (settings.broker_url, None)):
        if url is not None:
            validate_url(url, schemes or BROKER_SCHEMES, "url")  # what it kept is valid


@given(password=passwords)
def test_settings_metadata_never_carries_the_password(password: str) -> None:
    template = {"REDIS_URL": "redis://bench:***@10.0.0.5:6379/1", "broker": "amqp://", "x": True}
    assume(password not in str(template) + "redis_url_explicit broker_url")
    env = {
        "REDIS_URL": f"redis://bench:{password}@10.0.0.5:6379/1",
        "CELERY_BROKER_URL": f"amqp://bench:{password}@10.0.0.5:5672//",
    }
    try:
        shown = str(Settings.from_env(env).redacted())
    except SettingsError as exc:  # a raw "[" makes it malformed: then the message must not tell
        shown = str(exc)
    assert password not in shown


# --- environment variables read by the worker and the jobs ----------------------------------


@given(raw=typed)
def test_numeric_environment_variables_validate(raw: str) -> None:
    try:
        seconds = request_timeout_s({"JOBBENCH_REQUEST_TIMEOUT_S": raw})
        assert raw.strip() == "" or (0 < seconds <= MAX_REQUEST_TIMEOUT_S)
    except SettingsError as exc:
        assert one_line(str(exc))
    try:
        assert visibility_timeout_s({"JOBBENCH_VISIBILITY_TIMEOUT_S": raw}) > 0
    except SettingsError as exc:
        assert one_line(str(exc))
    try:
        assert acks_late({"JOBBENCH_ACKS_LATE": raw}) is (raw.strip() != "0")
        assert raw.strip() in ("", "0", "1")
    except SettingsError as exc:
        assert one_line(str(exc))


# --- the command line with hostile options and environment ----------------------------------

JOBBENCH = [sys.executable, "-m", "producer.cli"]

#: (argv, environment, text the one error line contains). Every one is refused before anything
#: starts. Those marked ``import`` are read when the Celery app is built, so they run in a fresh
#: interpreter; the others run in process.
HOSTILE: list[tuple[list[str], dict[str, str], str]] = [
    (["bench", "--models", ",,"], {}, "no model given"),
    (["bench", "--models", "celery_gevent"], {}, "unknown model celery_gevent"),
    (["bench", "--workloads", ""], {}, "no workload given"),
    (["bench", "--batch-size", "0"], {}, "--batch-size: must be between 1 and"),
    (["bench", "--thread-pool-workers", "10001"], {}, "must be between 1 and 10000"),
    (["bench", "--latency-ms", "-5"], {}, "--latency-ms: must be between"),
    (["bench", "--jitter-ms", "inf"], {}, "--jitter-ms: must be between"),
    (["bench", "--repeat", "1e3"], {}, "--repeat: not a number"),
    (["bench", "--url", "http://"], {}, "--url has no host"),
    (["bench", "--url", "http://h:port/"], {}, "--url is malformed"),
    (["bench"], {"JOBBENCH_MODELS": "nonsense"}, "unknown model nonsense"),
    (["bench"], {"JOBBENCH_REPEAT": "0"}, "--repeat: must be between 1 and 100"),
    (["bench"], {"JOBBENCH_TIMEOUT_S": "1e400"}, "--timeout-s: must be between"),
    (["bench"], {"JOBBENCH_SEED": "-1"}, "--seed: must be between 0 and"),
    (["bench"], {"REDIS_URL": "redis://:s3cret@h:notaport/0"}, "REDIS_URL is malformed"),
    (["bench"], {"REDIS_URL": "redis://bench:s3cret@"}, "REDIS_URL has no host"),
    (["bench"], {"CELERY_BROKER_URL": "kafka://h:9092"}, "must use one of the schemes"),
    (["bench"], {"REDIS_URL": "redis://bench:s3cret@127.0.0.1:1/0"}, "cannot reach Redis"),
    (["bench"], {"JOBBENCH_REQUEST_TIMEOUT_S": "-1"}, "JOBBENCH_REQUEST_TIMEOUT_S must be"),
    (["bench"], {"JOBBENCH_REQUEST_TIMEOUT_S": "soon"}, "JOBBENCH_REQUEST_TIMEOUT_S must be"),
    (["target", "--port", "0"], {}, "--port: must be between 1 and 65535"),
    (["target", "--port", "70000"], {}, "--port: must be between 1 and 65535"),
    (["history", "--limit", "0"], {}, "--limit: must be between 1 and"),
]
IMPORT_TIME: list[tuple[list[str], dict[str, str], str]] = [
    (["bench"], {"JOBBENCH_VISIBILITY_TIMEOUT_S": "-3"}, "JOBBENCH_VISIBILITY_TIMEOUT_S must be"),
    (["bench"], {"JOBBENCH_VISIBILITY_TIMEOUT_S": "1h"}, "JOBBENCH_VISIBILITY_TIMEOUT_S must be"),
    (["bench"], {"JOBBENCH_ACKS_LATE": "yes"}, "JOBBENCH_ACKS_LATE must be 0 or 1"),
    (["verify"], {"REDIS_URL": "redis://:s3cret@h:x/0"}, "REDIS_URL is malformed"),
]


def _with_out(argv: list[str], out: Path) -> list[str]:
    return [*argv, "--out", str(out)] if argv[0] in ("bench", "history") else argv


def _check(code: int, stderr: str, expected: str, out: Path) -> None:
    assert code == EXIT_USAGE, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], stderr
    assert "Traceback" not in stderr and "s3cret" not in stderr
    assert not out.exists() or not any(out.iterdir()), "nothing half-written"


@pytest.mark.parametrize(("argv", "env", "expected"), HOSTILE)
def test_hostile_option_or_variable_is_one_line_and_exit_2(
    argv: list[str],
    env: dict[str, str],
    expected: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for name in ("REDIS_URL", "CELERY_BROKER_URL"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    out = tmp_path / "results"
    try:
        code = main(_with_out(argv, out))
    except SystemExit as exc:
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    _check(code, captured.err, expected, out)
    assert "s3cret" not in captured.out


@pytest.mark.integration
@pytest.mark.parametrize(("argv", "env", "expected"), IMPORT_TIME)
def test_variables_read_at_start_are_one_line_and_exit_2(
    argv: list[str], env: dict[str, str], expected: str, tmp_path: Path
) -> None:
    out = tmp_path / "results"
    clean = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "CELERY_BROKER_URL")}
    proc = subprocess.run(
        [*JOBBENCH, *_with_out(argv, out)],
        capture_output=True, text=True, env={**clean, **env}, timeout=120,
    )  # fmt: skip
    _check(proc.returncode, proc.stderr, expected, out)


def test_unwritable_results_dir_is_refused_before_anything_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    code = main(["bench", "--models", "sequential", "--out", str(blocker / "results")])
    err = capsys.readouterr().err
    assert code == EXIT_USAGE and "cannot write results" in err and len(err.splitlines()) == 1
    assert blocker.read_text() == "not a directory"
