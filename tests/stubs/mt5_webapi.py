"""The fake MT5 Web API served by a real uvicorn on a free localhost port, in a thread of the
test process (so a test can flip its faults and advance its simulator while clients connect)."""

from __future__ import annotations

import datetime
import ipaddress
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import uvicorn
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from veles.mt5.replay import ReplayGateway
from veles.mt5.simulator import SimulatedBroker
from veles.mt5.webapi.fake_feed import BrokerDriver, TradeFeed, owners_of
from veles.mt5.webapi.fake_server import FakeWebApi, Manager, Source

MANAGER_LOGIN = 1005
MANAGER_PASSWORD = "Manager-Pass1"


def broker_source(broker: SimulatedBroker) -> Source:
    """The simulator's symbols, books and own account figures as the fake's data."""
    return Source(broker.symbols, broker.accounts, broker.figures)


def make_fake(accounts: int = 6, seed: int = 3, managers: tuple[Manager, ...] | None = None,
              **kwargs: object) -> tuple[FakeWebApi, SimulatedBroker]:
    """A fake over a small seeded simulator, with one full-rights manager by default."""
    broker = SimulatedBroker(accounts=accounts, seed=seed, warmup=60.0, start_msc=1_700_000_000_000)
    managers = managers or (Manager(MANAGER_LOGIN, MANAGER_PASSWORD),)
    return FakeWebApi(broker_source(broker), managers, **kwargs), broker  # type: ignore[arg-type]


def self_signed_tls(directory: Path) -> tuple[Path, Path, Path]:
    """A private CA and a certificate it signed for 127.0.0.1: (ca.pem, cert.pem, key.pem)."""
    now = datetime.datetime.now(datetime.UTC)
    start, end = now - datetime.timedelta(minutes=1), now + datetime.timedelta(days=1)
    signing = x509.KeyUsage(False, False, False, False, False, True, True, False, False)  # cert + CRL sign
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Broker private CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(start).not_valid_after(end)
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(signing, critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(end)
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                           critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    paths = directory / "ca.pem", directory / "cert.pem", directory / "key.pem"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return paths


@contextmanager
def serving(fake: FakeWebApi, tls: tuple[Path, Path] | None = None) -> Iterator[str]:
    """Serve `fake` until the block ends; yields its base URL (http://127.0.0.1:PORT, or https
    with `tls` = (certificate, key) files)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    certfile, keyfile = tls or (None, None)
    config = uvicorn.Config(
        fake.app, interface="asgi3", log_level="critical", lifespan="off", proxy_headers=False,
        timeout_keep_alive=30, ssl_certfile=certfile, ssl_keyfile=keyfile,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the fake MT5 Web API did not start")
        time.sleep(0.01)
    try:
        yield f"{'https' if tls else 'http'}://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def make_feed_fake(accounts: int = 6, seed: int = 3, managers: tuple[Manager, ...] | None = None,
                   start_msc: int = 1_700_000_000_000, **kwargs: object
                   ) -> tuple[FakeWebApi, SimulatedBroker, BrokerDriver]:
    """A fake serving ticks and deals too, with the driver that advances its simulator (not
    started: a test advances it step by step, or starts its timer)."""
    broker = SimulatedBroker(accounts=accounts, seed=seed, warmup=60.0, start_msc=start_msc)
    source = broker_source(broker)
    feed = TradeFeed(owners_of(broker))
    driver = BrokerDriver(broker, feed, source.lock)
    driver.advance()  # the first batch: a price for every symbol
    managers = managers or (Manager(MANAGER_LOGIN, MANAGER_PASSWORD),)
    return FakeWebApi(source, managers, feed=feed, **kwargs), broker, driver  # type: ignore[arg-type]


def make_replay_fake(path: Path, managers: tuple[Manager, ...] | None = None
                     ) -> tuple[FakeWebApi, ReplayGateway, BrokerDriver]:
    """A fake serving a recorded session (`veles.mt5.recording`), played one batch per driver
    step; the first batch (a price for every symbol) is played already."""
    replay = ReplayGateway(path)
    source = Source(replay.symbols, replay.accounts)
    feed = TradeFeed(owners_of(replay))
    driver = BrokerDriver(replay, feed, source.lock)
    driver.advance()
    managers = managers or (Manager(MANAGER_LOGIN, MANAGER_PASSWORD),)
    return FakeWebApi(source, managers, feed=feed), replay, driver
