"""The shipped deploy/ files made runnable on this machine: deploy/nginx.conf and
deploy/prometheus/prometheus.yml point at compose service names (`portal:3000`, `ray-head`) and
at /etc paths; the tests swap only those for local ones, each swap asserted to have happened, so
every other line (TLS, WebSocket upgrade, timeouts, body limits, forwarded headers, the alert
rules) is tested as shipped. Also: a self-signed certificate, free ports, and starting and
stopping the real nginx and prometheus binaries (Debian packages, scripts/setup.sh --test)."""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
NGINX = "/usr/sbin/nginx"


def free_port() -> int:
    """A TCP port nobody listens on now (the OS picks it)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def self_signed(folder: Path, host: str = "127.0.0.1") -> tuple[Path, Path]:
    """A fresh self-signed certificate for `host` (an IP address) and its key: (cert, key) PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(host))]),
                       critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "fullchain.pem", folder / "privkey.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def _swap(text: str, old: str, new: str) -> str:
    assert old in text, f"deploy file no longer contains {old!r}: update tests/deploy_support.py"
    return text.replace(old, new)


def nginx_config(folder: Path, upstream: str, https_port: int, http_port: int,
                 proxy_from: str | None = None) -> Path:
    """deploy/nginx.conf for a local nginx in `folder`: the portal at `upstream` (host:port),
    TLS on 127.0.0.1:`https_port` with a self-signed certificate made here, the redirect on
    `http_port`, pid, logs and temporary files in `folder`. `proxy_from` makes nginx connect to
    the portal from that local address (say 127.0.0.3), so the portal can tell the proxy (its TCP
    peer) from the browser (127.0.0.1, in X-Forwarded-For) as it can in compose."""
    cert, key = self_signed(folder)
    text = (DEPLOY / "nginx.conf").read_text()
    text = _swap(text, "server portal:3000;", f"server {upstream};")
    text = _swap(text, "listen 443 ssl http2;", f"listen 127.0.0.1:{https_port} ssl http2;")
    text = _swap(text, "listen 80;", f"listen 127.0.0.1:{http_port};")
    text = _swap(text, "/etc/nginx/certs/fullchain.pem", str(cert))
    text = _swap(text, "/etc/nginx/certs/privkey.pem", str(key))
    local = f"pid {folder / 'nginx.pid'};\nerror_log {folder / 'error.log'} info;\n"
    if os.geteuid() == 0:  # workers otherwise run as nobody, who cannot write the test's folder
        local += "user root;\n"
    text = _swap(text, "events {}", local + "events {}")
    temp = "".join(f"    {kind}_temp_path {folder / kind};\n"
                   for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    text = _swap(text, "http {\n", "http {\n" + f"    access_log {folder / 'access.log'};\n" + temp)
    if proxy_from is not None:
        text = _swap(text, "        proxy_http_version 1.1;\n",
                     f"        proxy_http_version 1.1;\n        proxy_bind {proxy_from};\n")
    path = folder / "nginx.conf"
    path.write_text(text)
    return path


def nginx_check(config: Path) -> subprocess.CompletedProcess[str]:
    """`nginx -t` of a config: its exit status and what it said."""
    return subprocess.run([NGINX, "-t", "-c", str(config), "-p", str(config.parent)],
                          capture_output=True, text=True, timeout=30)


@contextlib.contextmanager
def running_nginx(config: Path, https_port: int) -> Iterator[subprocess.Popen[bytes]]:
    """Debian's nginx on `config` in the foreground, answering on `https_port`; stopped after."""
    if not Path(NGINX).exists():
        pytest.fail(f"{NGINX} is required (scripts/setup.sh --test installs Debian's nginx)")
    checked = nginx_check(config)
    assert checked.returncode == 0, checked.stderr
    proc = subprocess.Popen([NGINX, "-c", str(config), "-p", str(config.parent), "-g", "daemon off;"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_port(https_port, proc, "nginx")
        yield proc
    finally:
        stop(proc)


def prometheus_config(folder: Path, portal: str, token: str, ray: str | None,
                      interval: str = "1s") -> Path:
    """deploy/prometheus/prometheus.yml for a local Prometheus: the portal's job scrapes `portal`
    (host:port) with bearer `token`, the Ray job `ray`, every `interval`; alerts.yml is loaded as
    shipped (by its absolute path)."""
    config: dict[str, Any] = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    config["global"] = {"scrape_interval": interval, "evaluation_interval": interval}
    assert config["rule_files"] == ["alerts.yml"]
    config["rule_files"] = [str(DEPLOY / "prometheus" / "alerts.yml")]
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    token_file = folder / "metrics-token"
    token_file.write_text(token)
    portal_job = jobs["veles-portal"]
    assert portal_job["authorization"]["credentials_file"] == "/etc/prometheus/metrics-token"
    portal_job["authorization"]["credentials_file"] = str(token_file)
    del portal_job["dns_sd_configs"]
    portal_job["static_configs"] = [{"targets": [portal]}]
    ray_job = jobs["ray"]
    del ray_job["dns_sd_configs"]
    ray_job["static_configs"] = [{"targets": [ray]}] if ray else []
    path = folder / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    return path


@contextlib.contextmanager
def running_prometheus(config: Path, port: int) -> Iterator[str]:
    """Debian's Prometheus on `config`, its API at the URL yielded; stopped (and its data left in
    the config's folder) after."""
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.fail("prometheus is required (scripts/setup.sh --test installs Debian's prometheus)")
    log = (config.parent / "prometheus.log").open("wb")
    proc = subprocess.Popen(
        [binary, f"--config.file={config}", f"--storage.tsdb.path={config.parent / 'data'}",
         f"--web.listen-address=127.0.0.1:{port}", "--web.enable-lifecycle"],
        stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail(f"prometheus exited {proc.returncode}: "
                            f"{(config.parent / 'prometheus.log').read_text()[-3000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/-/ready", timeout=2).status_code == 200:
                    break
            time.sleep(0.5)
        else:
            pytest.fail("prometheus did not become ready in 60 s")
        yield url
    finally:
        stop(proc)
        log.close()


def _wait_port(port: int, proc: subprocess.Popen[bytes], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"{what} exited with {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return
        time.sleep(0.2)
    pytest.fail(f"{what} did not listen on {port} in {timeout:.0f} s")


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL after 20 s: nothing a test started outlives it."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# What a metric family's samples are called in the exposition, by its type.
_SUFFIXES = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_sum", "_count", "_created"),
             "summary": ("_sum", "_count", "_created"), "gauge": ("",), "untyped": ("",), "unknown": ("",)}
METRIC_NAME = re.compile(r"\b((?:veles|ray)_[a-z0-9_]+)\b")


def exported_names(exposition: str) -> set[str]:
    """Every sample name an exposition declares, with or without samples now (a family with no
    tenant yet still has its # TYPE line): `veles_pushes` counter -> veles_pushes_total, ..."""
    names = set()
    for line in exposition.splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[:2] == ["#", "TYPE"]:
            # prometheus_client declares a counter as name_total; its samples are _total and _created
            base = parts[2].removesuffix("_total") if parts[3] == "counter" else parts[2]
            names.update(base + suffix for suffix in _SUFFIXES.get(parts[3], ("",)))
        elif line and not line.startswith("#"):
            names.add(re.split(r"[{ ]", line, maxsplit=1)[0])
    return names


def dashboard_metric_names() -> set[str]:
    """The metric names deploy/grafana/veles-dashboard.json's queries use."""
    dashboard = json.loads((DEPLOY / "grafana" / "veles-dashboard.json").read_text())
    return {name for panel in dashboard["panels"] for target in panel.get("targets", [])
            for name in METRIC_NAME.findall(target["expr"])}


def alert_rules() -> list[dict[str, Any]]:
    """Every rule of deploy/prometheus/alerts.yml."""
    loaded = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
    return [rule for group in loaded["groups"] for rule in group["rules"]]
