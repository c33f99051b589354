"""Flower seen through a real browser during a real run.

``jobbench bench --flower`` runs the three Celery pools on a small IO workload; while it runs,
headless Chromium (driven by chromedriver over plain WebDriver HTTP calls) opens Flower with the
basic-auth credentials from ``FLOWER_BASIC_AUTH`` and must see the prefork, threads and solo
workers online and their tasks in the task list. The screenshots land in
``results/screenshots/``. Flower's REST API is checked on the way, and afterwards that the run
stopped Flower and every worker it started.
"""

from __future__ import annotations

import base64
import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from producer.flower import flower_env, parse_basic_auth, port_from_env, running_flower
from producer.services import embedded_redis, free_port, stop_process
from shared.settings import SettingsError
from tests.conftest import need

ROOT = Path(__file__).resolve().parents[1]
SCREENSHOTS = ROOT / "results" / "screenshots"
POOLS = ("prefork", "threads", "solo")
#: Isolated, quiet headless Chromium: no sandbox (CI runs as root), no GPU, no network of its
#: own (updates, sync, field trials), a fresh profile per test.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--window-size=1400,1250",
)
#: The run: threads, then prefork, then solo (no shuffle), 24 requests of 500 ms each. Solo
#: alone takes 12 s, so every worker stays online for ~18 s while the browser looks.
RUN_ARGS = (
    "--models", "celery_threads,celery_prefork,celery_solo", "--no-shuffle",
    "--workloads", "io", "--io-jobs", "24", "--latency-ms", "500",
    "--repeat", "1", "--warmup", "0", "-q",
)  # fmt: skip
#: Seconds the browser and API checks may wait for what they expect to appear.
SEE_TIMEOUT_S = 25.0
#: Seconds a page is watched before it is loaded again.
RELOAD_EVERY_S = 4.0


def executable(name: str) -> str | None:
    return shutil.which(name) or next(
        (p for p in (f"/usr/bin/{name}", f"/usr/lib/chromium/{name}") if os.access(p, os.X_OK)),
        None,
    )


class WebDriver:
    """The few W3C WebDriver commands this test needs, plus chromedriver's CDP bridge."""

    def __init__(self, endpoint: str, session_id: str, client: httpx.Client) -> None:
        self.base = f"{endpoint}/session/{session_id}"
        self.client = client

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        response = self.client.request(method, f"{self.base}{path}", json=body, timeout=60)
        value = response.json()["value"]
        assert response.status_code == 200, f"{method} {path}: {value}"
        return value

    def cdp(self, cmd: str, params: dict[str, Any]) -> Any:
        return self.call("POST", "/goog/cdp/execute", {"cmd": cmd, "params": params})

    def navigate(self, url: str) -> None:
        self.call("POST", "/url", {"url": url})

    def script(self, source: str) -> Any:
        return self.call("POST", "/execute/sync", {"script": source, "args": []})

    def screenshot(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(self.call("GET", "/screenshot")))


@contextlib.contextmanager
def chromium(tmp_path: Path) -> Iterator[WebDriver]:
    driver_exe, chromium_exe = executable("chromedriver"), executable("chromium")
    need(driver_exe is not None and chromium_exe is not None,
         "chromium and chromium-driver are not installed: make browser-deps")  # fmt: skip
    assert driver_exe is not None and chromium_exe is not None
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    with open(tmp_path / "chromedriver.log", "wb") as log:
        proc = subprocess.Popen(
            [driver_exe, f"--port={port}"], stdin=subprocess.DEVNULL, stdout=log,
            stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        with httpx.Client() as client:
            wait_for(lambda: client.get(f"{endpoint}/status").json()["value"]["ready"], 20,
                     "chromedriver")  # fmt: skip
            options = {
                "binary": chromium_exe,
                "args": [*CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}"],
            }
            capabilities = {"alwaysMatch": {"browserName": "chrome",
                                            "goog:chromeOptions": options}}  # fmt: skip
            created = client.post(f"{endpoint}/session", json={"capabilities": capabilities},
                                  timeout=60).json()["value"]  # fmt: skip
            assert "sessionId" in created, created
            browser = WebDriver(endpoint, created["sessionId"], client)
            try:
                yield browser
            finally:
                with contextlib.suppress(httpx.HTTPError):
                    client.delete(browser.base, timeout=20)
    finally:
        stop_process(proc, grace_s=5)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)  # any Chromium process left in its group


def wait_for(check: Callable[[], Any], timeout_s: float, what: str | Callable[[], str]) -> Any:
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except Exception as exc:  # not ready yet; shown if it never gets there
            last = exc
        else:
            if last:
                return last
        time.sleep(0.3)
    said = what() if callable(what) else what
    pytest.fail(f"timed out after {timeout_s:.0f} s waiting for {said} (last: {last!r})")


def page_shows(
    browser: WebDriver, url: str, wanted: Callable[[list[str]], bool], what: str
) -> None:
    """Open ``url`` and watch its table (filled by XHR after load) until ``wanted(rows)``,
    reloading now and then: the task list does not refresh by itself."""
    seen: list[str] = []

    def look() -> bool:
        browser.navigate(url)
        deadline = time.monotonic() + RELOAD_EVERY_S
        while time.monotonic() < deadline:
            seen[:] = table_rows(browser)
            if wanted(seen):
                return True
            time.sleep(0.25)
        return False

    wait_for(look, SEE_TIMEOUT_S, lambda: f"{what}; the rows: {seen}")


def table_rows(browser: WebDriver) -> list[str]:
    rows = browser.script(
        "return Array.from(document.querySelectorAll('table tbody tr'))"
        ".map(tr => tr.innerText.replace(/\\s+/g, ' '))"
    )
    return [str(r) for r in rows]


def pool_of(node: str) -> str | None:
    m = re.match(r"celery_(\w+?)-(\w+?)-[0-9a-f]+@", node)
    return m.group(2) if m else None


# --- producer.flower without services ----------------------------------------------------------


def test_basic_auth_parsing_drops_an_empty_value_and_rejects_a_malformed_one() -> None:
    assert parse_basic_auth(None) == ()
    assert parse_basic_auth("") == ()  # Flower itself would lock everybody out
    assert parse_basic_auth("a:b,c:d:e") == (("a", "b"), ("c", "d:e"))
    for bad in ("nopassword", ":pw", "user:"):
        with pytest.raises(SettingsError):
            parse_basic_auth(bad)


def test_flower_env_passes_the_broker_and_auth_only_when_set(monkeypatch: Any) -> None:
    monkeypatch.setenv("FLOWER_BASIC_AUTH", "")
    monkeypatch.setenv("FLOWER_PORT", "1234")
    env = flower_env("redis://127.0.0.1:1/0", None)
    assert env["CELERY_BROKER_URL"] == "redis://127.0.0.1:1/0"
    assert "FLOWER_BASIC_AUTH" not in env and "FLOWER_PORT" not in env
    assert flower_env(None, "u:p")["FLOWER_BASIC_AUTH"] == "u:p"
    assert port_from_env({"FLOWER_PORT": "5600"}) == 5600
    assert port_from_env({}) is None
    with pytest.raises(SettingsError):
        port_from_env({"FLOWER_PORT": "99999"})


# --- Flower for real ---------------------------------------------------------------------------


@pytest.mark.integration
def test_make_flower_entry_point_serves_on_loopback_with_auth_and_stops_on_ctrl_c(
    tmp_path: Path,
) -> None:
    """``make flower`` runs ``jobbench flower --port N``."""
    port = free_port()
    with embedded_redis() as redis_url:
        env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWER_")}
        env.update(REDIS_URL=redis_url, FLOWER_BASIC_AUTH="watch:secret")
        env.pop("CELERY_BROKER_URL", None)
        with open(tmp_path / "flower.log", "wb") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "producer.cli", "flower", "--port", str(port)], env=env,
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        try:
            url = f"http://127.0.0.1:{port}/"
            wait_for(lambda: httpx.get(f"{url}healthcheck", timeout=1).text == "OK", 30, "Flower")
            assert httpx.get(url, timeout=5).status_code == 401
            assert httpx.get(url, auth=("watch", "secret"), timeout=5).status_code == 200
            assert httpx.get(f"{url}api/workers", auth=("watch", "secret"), timeout=10).json() == {}
            listening = {
                (c.laddr.ip, c.laddr.port) for c in psutil.net_connections("tcp")
                if c.status == psutil.CONN_LISTEN and c.laddr.port == port
            }  # fmt: skip
            assert listening == {("127.0.0.1", port)}, "Flower listens on loopback only"
            proc.send_signal(signal.SIGINT)  # Ctrl-C
            assert proc.wait(timeout=20) == 0
        finally:
            stop_process(proc)
        output = (tmp_path / "flower.log").read_text()
        assert f"flower: {url} (basic auth on" in output
        assert "secret" not in output
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{url}healthcheck", timeout=2)


def test_running_flower_refuses_a_taken_port() -> None:
    import socket

    from producer.services import ServiceError

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with (
            pytest.raises(ServiceError, match="in use"),
            running_flower(port=taken.getsockname()[1]),
        ):
            pass


@pytest.mark.integration
def test_browser_sees_the_three_pools_and_their_tasks_in_flower(tmp_path: Path) -> None:
    credentials = ("jobbench", os.urandom(8).hex())
    flower_port = free_port()
    jobbench = Path(sys.executable).parent / "jobbench"
    with embedded_redis() as redis_url, chromium(tmp_path) as browser:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("JOBBENCH_", "FLOWER_"))}
        env.pop("CELERY_BROKER_URL", None)
        env.update(REDIS_URL=redis_url, FLOWER_PORT=str(flower_port),
                   FLOWER_BASIC_AUTH=":".join(credentials))  # fmt: skip
        out = tmp_path / "results"
        err_path = tmp_path / "bench.stderr"
        with open(err_path, "wb") as err:
            bench = subprocess.Popen(
                [str(jobbench), "bench", "--flower", *RUN_ARGS, "--out", str(out)], env=env,
                cwd=tmp_path, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
            )  # fmt: skip
        try:
            # The URL is printed as soon as Flower answers, before any worker starts.
            printed = re.compile(r"^flower: (http://\S+) \(basic auth on", re.M)
            match = wait_for(lambda: printed.search(err_path.read_text()), 30, "the Flower URL")
            url = match.group(1)
            assert url == f"http://127.0.0.1:{flower_port}/"

            # REST API: health is open, the API wants the credentials.
            health = httpx.get(f"{url}healthcheck", timeout=5)
            assert (health.status_code, health.text) == (200, "OK")
            assert httpx.get(f"{url}api/workers", timeout=5).status_code == 401
            assert httpx.get(f"{url}api/workers", auth=("x", "y"), timeout=5).status_code == 401

            def api_online() -> set[str]:
                status = httpx.get(f"{url}api/workers?status=true", auth=credentials,
                                   timeout=10).json()  # fmt: skip
                pools = {pool_of(node) for node, up in status.items() if up}
                return {p for p in pools if p} if set(POOLS) <= pools else set()

            assert wait_for(api_online, SEE_TIMEOUT_S, "three workers online in /api/workers")
            workers = httpx.get(f"{url}api/workers", auth=credentials, timeout=10).json()
            for node, info in workers.items():
                assert "jobbench.run_jobs" in info.get("registered", []), node

            # The browser sends the credentials on every request (page and its XHRs).
            token = base64.b64encode(":".join(credentials).encode()).decode()
            browser.cdp("Network.enable", {})
            header = {"Authorization": f"Basic {token}"}
            browser.cdp("Network.setExtraHTTPHeaders", {"headers": header})

            def three_online(rows: list[str]) -> bool:
                return all(any(f"celery_{p}-{p}" in r and "Online" in r for r in rows)
                           for p in POOLS)  # fmt: skip

            def tasks_of_three(rows: list[str]) -> bool:
                rows = [r for r in rows if "jobbench.run_jobs" in r]
                return all(any(f"celery_{p}-{p}" in r for r in rows) for p in POOLS)

            page_shows(browser, url, three_online, "three online workers on the workers page")
            browser.screenshot(SCREENSHOTS / "flower-workers.png")
            page_shows(browser, f"{url}tasks", tasks_of_three, "tasks of all three pools")
            browser.screenshot(SCREENSHOTS / "flower-tasks.png")
            tasks = httpx.get(f"{url}api/tasks", auth=credentials, timeout=10).json()
            assert {pool_of(t["worker"]) for t in tasks.values() if t.get("worker")} == set(POOLS)

            assert bench.wait(timeout=90) == 0, err_path.read_text()[-3000:]
        finally:
            stop_process(bench, grace_s=30)  # no-op once it exited

    # The run finished, wrote its results, and stopped Flower and every worker it started.
    (run_dir,) = [p for p in out.iterdir() if not p.is_symlink() and (p / "results.json").exists()]
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}healthcheck", timeout=2)
    leftovers = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if run_dir.name in cmdline or f"--port={flower_port}" in cmdline:
            leftovers.append(cmdline)
    assert leftovers == []
    for name in ("flower-workers.png", "flower-tasks.png"):
        assert (SCREENSHOTS / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
