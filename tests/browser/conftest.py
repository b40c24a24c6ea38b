"""Headless Debian Chromium driven by Playwright (never a downloaded browser), and a real
`veles demo` for the modules that test the portal end to end.

Starting a demo (Ray, the engine's actors, a Reflex production build) is most of this suite's time,
so every module here shares one: `demo` is the session's demo (port `DEMO_PORT`, `DEMO_ACCOUNTS`
accounts, its e-mail going to the `demo_mail` SMTP server), and each module adds the tenants and
users it needs beside the demo's broker. The modules run one after another, a test marked
`loads_demo` (it puts load on the demo) after them, one marked `stops_demo` (it ends the demo
itself) after all of them, and the demo is stopped as soon as the last of them is done, so its
Ray cluster does not compete with the rest of the suite.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Generator, Iterator, Mapping
from pathlib import Path

import psutil
import pytest
from cryptography.fernet import Fernet
from playwright.sync_api import Browser, sync_playwright
from sqlmodel import col, select

from models.db import session_scope
from models.tenancy import Role, Tenant, User
from tests.stubs.mt5_webapi import self_signed_tls
from tests.stubs.smtp_stub import SmtpStub
from tests.stubs.stripe_fake import StripeFake
from veles.services.auth import hash_password

PROJECT_ROOT = Path(__file__).resolve().parents[2]
STARTUP_SECONDS = 600
# Ray waits a fixed 30 s for a new node's raylet; under load that can run out before Veles starts.
RAY_STARTUP_TIMEOUT = "The current node timed out during startup"
RAY_STARTUP_RETRIES = 1
RESTARTED = "[tests] Ray timed out starting its node: starting the demo again"
DEMO_PORT = 3280
DEMO_ACCOUNTS = 4  # enough for every browser test; each account is a Ray actor busy ~20% of a core
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


def private_web_dir(tmp_path: Path) -> Path | None:
    """A copy of the project's Reflex build directory (.web) for one demo, so two demos building
    at the same time (two modules, or another run on this machine) cannot serve each other's front
    end: each build writes its own port into the bundle, and a shared .web gave a portal on one
    port that opened its socket to another's. node_modules, which builds only read, is hard-linked
    (seconds, no disk). None when the project has no .web yet (the demo then makes the shared one).
    """
    source = PROJECT_ROOT / ".web"
    if not (source / "node_modules").is_dir():
        return None
    target = tmp_path / "web"
    not_copied = {"node_modules", "build", ".react-router"}  # at the top only: linked, or rebuilt

    def ignore(folder: str, names: list[str]) -> list[str]:
        return [name for name in names if Path(folder) == source and name in not_copied]

    shutil.copytree(source, target, symlinks=True, ignore=ignore)
    subprocess.run(["cp", "-al", str(source / "node_modules"), str(target / "node_modules")], check=True)
    return target


class Demo:
    """A `veles demo` child process and everything it printed."""

    def __init__(self, tmp_path: Path, port: int, accounts: int, extra_env: Mapping[str, str] | None = None,
                 database_url: str | None = None, redis_url: str | None = None) -> None:
        """Embedded (a SQLite file, no Redis) unless given a database URL and a Redis URL."""
        env = dict(os.environ)
        self.database_url = database_url or f"sqlite:///{tmp_path / 'demo.db'}"
        env.setdefault("CREDENTIALS_KEYS", Fernet.generate_key().decode())  # MT5 passwords at rest
        env.update(
            DATABASE_URL=self.database_url,
            FRONTEND_PORT=str(port),
            DEMO_ACCOUNTS=str(accounts),
            RAY_NUM_CPUS="2",
            # Every browser test signs in from 127.0.0.1, dozens of times a minute across modules;
            # the sign-in limit itself is tested in tests/ui/test_portal_sign_in.py and
            # tests/api/test_auth.py.
            LOGIN_LIMIT="1000",
            **(extra_env or {}),
        )
        env.pop("REDIS_URL", None)
        if redis_url:
            env["REDIS_URL"] = redis_url
        env.pop("RAY_ADDRESS", None)
        web = private_web_dir(tmp_path)
        if web is not None:
            env["REFLEX_WEB_WORKDIR"] = str(web)
        self.log = tmp_path / "demo.log"
        self._out = self.log.open("wb")
        self._env = env
        self._starts_left = 1 + RAY_STARTUP_RETRIES
        self.proc = self._start()

    def _start(self) -> subprocess.Popen[bytes]:
        self._starts_left -= 1
        return subprocess.Popen(
            [str(Path(sys.executable).parent / "veles"), "demo"],
            stdout=self._out,
            stderr=subprocess.STDOUT,
            env=self._env,
            start_new_session=True,
        )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def _ray_did_not_start(self) -> bool:
        """Whether the demo ended because Ray's own 30 s wait for its raylet (fixed inside Ray) ran
        out: on a machine busy with other work that happens before any of Veles runs."""
        return RAY_STARTUP_TIMEOUT in self.output().rsplit(RESTARTED, 1)[-1]

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
                if self._starts_left > 0 and self._ray_did_not_start():
                    with contextlib.suppress(ProcessLookupError):  # what Ray had started of the node
                        os.killpg(self.proc.pid, signal.SIGKILL)
                    self._out.write(f"\n{RESTARTED}\n".encode())
                    self._out.flush()
                    self.proc = self._start()
                    continue
                pytest.fail(f"veles demo exited with {self.proc.returncode}:\n{self.output()[-4000:]}")
            time.sleep(1)
        pytest.fail(f"veles demo did not come up in {STARTUP_SECONDS} s:\n{self.output()[-4000:]}")

    def tenant_id(self) -> int:
        """The demo's broker: the first tenant made (modules sharing the demo add their own)."""
        with session_scope(self.database_url) as session:
            tenant_id = session.exec(select(Tenant.id).order_by(col(Tenant.id))).first()
        assert tenant_id is not None, "the demo made no tenant"
        return tenant_id

    def add_users(self, *users: tuple[str, str, Role]) -> int:
        """Adds (email, password, role) users to the demo's broker and returns its tenant id."""
        tenant_id = self.tenant_id()
        with session_scope(self.database_url) as session:
            for email, password, role in users:
                session.add(User(tenant_id=tenant_id, email=email, password_hash=hash_password(password),
                                 role=role))
        return tenant_id

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


_DEMO = pytest.StashKey[Demo]()
HERE = Path(__file__).parent


def _ours(item: pytest.Item | None) -> bool:
    return item is not None and HERE in item.path.parents


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "stops_demo: ends the demo itself (runs after the others)")
    config.addinivalue_line("markers", "loads_demo: puts load and data on the demo (runs after the "
                            "others, before the stops_demo tests)")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """This directory's tests module by module, as collected, then the `loads_demo` tests, then the
    `stops_demo` tests, so one demo serves them all. Other directories' tests keep their places."""
    slots = [n for n, item in enumerate(items) if _ours(item)]

    def rank(item: pytest.Item) -> int:
        if item.get_closest_marker("stops_demo"):
            return 2
        return 1 if item.get_closest_marker("loads_demo") else 0

    ours = sorted((items[n] for n in slots), key=rank)
    for n, item in zip(slots, ours, strict=True):
        items[n] = item


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Generator[None, None, None]:
    """After the last browser test (and its module's fixtures) is done, stop the demo, so its Ray
    cluster and portal do not compete with the tests that follow."""
    yield
    if _ours(item) and not _ours(nextitem) and _DEMO in item.config.stash:
        item.config.stash[_DEMO].close()


@pytest.fixture(scope="session")
def demo_mail() -> Iterator[SmtpStub]:
    """The SMTP server the demo sends its e-mail to (password-reset links, say)."""
    stub = SmtpStub().start()
    yield stub
    stub.close()


@pytest.fixture(scope="session")
def mt5_tls(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """A broker's private CA and a certificate it signed for 127.0.0.1 (ca, cert, key): the demo
    trusts the CA (MT5_CA_BUNDLE), so a fake MT5 Web API served with the certificate is reachable
    at https://127.0.0.1:PORT from the portal's connection form."""
    return self_signed_tls(tmp_path_factory.mktemp("mt5-tls"))


DEMO_WEBHOOK_SECRET = "whsec_browser_demo"


@pytest.fixture(scope="session")
def demo_stripe() -> Iterator[StripeFake]:
    """The Stripe the demo bills through: localstripe with the project's fake of Prices, Checkout
    and the Billing Portal in front (tests/stubs/stripe_fake.py), on free local ports."""
    fake = StripeFake().start()
    yield fake
    fake.close()


@pytest.fixture(scope="session")
def demo(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
         demo_mail: SmtpStub, mt5_tls: tuple[Path, Path, Path], demo_stripe: StripeFake) -> Iterator[Demo]:
    """The demo every browser module shares; stopped after the last of them (see above). A test may
    stop it itself (test_demo does, with Ctrl-C); the fixture makes sure it is stopped."""
    smtp = {f"SMTP_{key.removeprefix('smtp_').upper()}": str(value)
            for key, value in demo_mail.settings_fields().items() if value is not None}
    smtp["MT5_CA_BUNDLE"] = str(mt5_tls[0])
    smtp.update(STRIPE_SECRET_KEY="sk_test_browser_demo", STRIPE_API_BASE=demo_stripe.base,
                STRIPE_WEBHOOK_SECRET=DEMO_WEBHOOK_SECRET)
    running = Demo(tmp_path_factory.mktemp("demo"), DEMO_PORT, DEMO_ACCOUNTS, smtp)
    request.config.stash[_DEMO] = running
    try:
        running.wait_until_up()
        yield running
    finally:
        running.close()
