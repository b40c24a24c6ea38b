"""Headless Debian Chromium driven by Playwright (never a downloaded browser), and a real
`veles demo` for the modules that test the portal end to end."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from cryptography.fernet import Fernet
from playwright.sync_api import Browser, sync_playwright

STARTUP_SECONDS = 600
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One Chromium per module (scripts/setup.sh --test installs the Debian package).

    Module-scoped on purpose: sync Playwright runs its own event loop in the main thread while
    it is open, which would stop the async tests of later modules from starting theirs.
    """
    executable = shutil.which("chromium")
    if executable is None:
        pytest.fail("chromium is required for browser tests (scripts/setup.sh --test installs it)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


class Demo:
    """A `veles demo` child process and everything it printed."""

    def __init__(self, tmp_path: Path, port: int, accounts: int) -> None:
        env = dict(os.environ)
        self.database_url = f"sqlite:///{tmp_path / 'demo.db'}"
        env.setdefault("CREDENTIALS_KEYS", Fernet.generate_key().decode())  # MT5 passwords at rest
        env.update(
            DATABASE_URL=self.database_url,
            FRONTEND_PORT=str(port),
            DEMO_ACCOUNTS=str(accounts),
            RAY_NUM_CPUS="2",
        )
        env.pop("REDIS_URL", None)
        env.pop("RAY_ADDRESS", None)
        self.log = tmp_path / "demo.log"
        self._out = self.log.open("wb")
        self.proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "veles"), "demo"],
            stdout=self._out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_until_up(self) -> tuple[str, str, str]:
        """The URL and credentials the demo printed once its portal answered."""
        deadline = time.monotonic() + STARTUP_SECONDS
        pattern = re.compile(r"Veles is running: (\S+)\s+sign in as (\S+) / (\S+)")
        while time.monotonic() < deadline:
            found = pattern.search(self.output())
            if found:
                url, email, password = found.groups()
                return url, email, password
            if self.proc.poll() is not None:
                pytest.fail(f"veles demo exited with {self.proc.returncode}:\n{self.output()[-4000:]}")
            time.sleep(1)
        pytest.fail(f"veles demo did not come up in {STARTUP_SECONDS} s:\n{self.output()[-4000:]}")

    def descendants(self) -> list[psutil.Process]:
        return psutil.Process(self.proc.pid).children(recursive=True)

    def close(self) -> None:
        """Ctrl-C first: the portal runs in its own session, which only the demo's own shutdown
        stops; SIGKILL to the demo's group alone would leave it serving on the port."""
        if self.proc.poll() is None:
            children = self.descendants()
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=90)
            except subprocess.TimeoutExpired:
                for child in children:
                    with contextlib.suppress(psutil.NoSuchProcess):
                        child.kill()
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._out.close()


@pytest.fixture(scope="module")
def demo(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    """One demo per module, on the module's own PORT with its DEMO_ACCOUNTS (so modules never
    share a port); a test may stop it itself (test_demo does, with Ctrl-C), the fixture makes sure."""
    running = Demo(tmp_path_factory.mktemp("demo"), request.module.PORT, request.module.DEMO_ACCOUNTS)
    running.wait_until_up()
    yield running
    running.close()
