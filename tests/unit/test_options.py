"""Options declared once: every command's options come from config fields (or one declaration),
each with help and an environment variable, and a variable means one thing everywhere."""

from __future__ import annotations

import argparse

import pytest

from producer.cli import COMMANDS, build_parser
from producer.cli.options import config_from, option
from producer.errors import EXIT_USAGE
from producer.hosts import HostsConfig
from worker.app import ACKS_LATE_ENV, PARENT_PID_ENV, VISIBILITY_TIMEOUT_ENV

#: Options without a variable: switches of one invocation that measure nothing differently.
NO_VARIABLE = {
    "--help",
    "--quiet",
    "--no-shuffle",
    "--no-events",
    "--check",
    "--cleanup",
    "--flower",
}
#: Variables the workers read: a command option reading one would change every later worker.
WORKER_VARIABLES = {VISIBILITY_TIMEOUT_ENV, ACKS_LATE_ENV, PARENT_PID_ENV}


def command_options() -> list[tuple[str, argparse.Action]]:
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    return [
        (name, action)
        for name, parser in sub.choices.items()  # type: ignore[attr-defined]
        for action in parser._actions
        if action.option_strings
    ]


def variable_of(action: argparse.Action) -> str | None:
    text = action.help or ""
    if "[env " not in text:
        return None
    return text.split("[env ", 1)[1].split(";")[0].split("=")[0].rstrip("]")


def test_every_command_is_built_and_every_option_has_help_and_a_variable() -> None:
    options = command_options()
    assert {name for name, _ in options} == set(COMMANDS)
    for name, action in options:
        assert action.help, (name, action.option_strings)
        if not set(action.option_strings) & NO_VARIABLE:
            assert variable_of(action), (name, action.option_strings)


def test_a_variable_means_one_thing_across_commands() -> None:
    flags: dict[str, set[str]] = {}
    for _name, action in command_options():
        env = variable_of(action)
        if env:
            flags.setdefault(env, set()).add(action.option_strings[-1])
    assert {env: f for env, f in flags.items() if len(f) > 1} == {}
    assert not WORKER_VARIABLES & flags.keys()
    assert flags["JOBBENCH_HOSTS_VISIBILITY_TIMEOUT_S"] == {"--visibility-timeout-s"}


def test_the_workers_visibility_timeout_does_not_reach_the_hosts_option(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The bug: exporting JOBBENCH_VISIBILITY_TIMEOUT_S for ``jobbench hosts`` also changed
    every later ``jobbench bench`` worker. Each now has its own variable."""
    monkeypatch.setenv(VISIBILITY_TIMEOUT_ENV, "999")
    args = build_parser("hosts").parse_args(["hosts"])
    assert config_from(HostsConfig, args).visibility_timeout_s == HostsConfig.visibility_timeout_s
    monkeypatch.setenv("JOBBENCH_HOSTS_VISIBILITY_TIMEOUT_S", "7")
    args = build_parser("hosts").parse_args(["hosts"])
    assert config_from(HostsConfig, args).visibility_timeout_s == 7


def test_a_field_default_is_the_option_default_and_a_variable_overrides_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from dataclasses import dataclass

    from producer.cli.options import Parser, add_options, bounded

    @dataclass(frozen=True)
    class Config:
        n_jobs: int = option(5, "jobs", env="JOBBENCH_TEST_N_JOBS", type=bounded(int, 1, 9))
        fast: bool = option(False, "go fast", kind="flag", env="JOBBENCH_TEST_FAST")

    def parse(*argv: str) -> Config:
        parser = Parser(prog="t")
        add_options(parser, Config)
        return config_from(Config, parser.parse_args(list(argv)))

    assert parse() == Config() == Config(5, False)
    assert parse("--n-jobs", "7", "--fast") == Config(7, True)
    monkeypatch.setenv("JOBBENCH_TEST_N_JOBS", "8")
    monkeypatch.setenv("JOBBENCH_TEST_FAST", "yes")
    assert parse() == Config(8, True)
    assert parse("--n-jobs", "2") == Config(2, True)
    monkeypatch.setenv("JOBBENCH_TEST_N_JOBS", "10")
    with pytest.raises(ValueError, match=r"--n-jobs: must be between 1 and 9, got 10 \(from JOB"):
        parse()
    monkeypatch.setenv("JOBBENCH_TEST_N_JOBS", "3")
    with pytest.raises(SystemExit) as info:
        parse("--n-jobs", "0")
    assert info.value.code == EXIT_USAGE
