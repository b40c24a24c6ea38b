"""deploy/ cannot be run here (no Docker engine), so check what can be checked without one."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from veles.cli import app
from veles.config import Settings

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    assert isinstance(loaded, dict)
    return loaded


def test_services_depend_only_on_services_that_exist(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name, service in services.items():
        for dependency in service.get("depends_on", {}):
            assert dependency in services, f"{name} depends on unknown service {dependency}"


def test_every_variable_set_for_veles_is_a_setting(compose: dict[str, Any]) -> None:
    fields = {name.upper() for name in Settings.model_fields}
    for name, service in compose["services"].items():
        if "build" not in service or "environment" not in service:
            continue
        unknown = set(service["environment"]) - fields
        assert not unknown, f"{name} sets variables Veles does not read: {unknown}"


def test_every_veles_command_exists(compose: dict[str, Any]) -> None:
    runner = CliRunner()
    commands = [s["command"] for s in compose["services"].values() if "build" in s and "command" in s]
    veles_commands = [c for c in commands if c[0] == "veles"]
    assert veles_commands, "compose should run the veles command"
    for command in veles_commands:
        result = runner.invoke(app, [*command[1:], "--help"])
        assert result.exit_code == 0, f"`{shlex.join(command)}` is not a veles command: {result.output}"


def test_dockerfile_copies_only_paths_that_exist() -> None:
    for line in (DEPLOY / "Dockerfile").read_text().splitlines():
        match = re.match(r"COPY\s+(.+)\s+\S+$", line)
        if match:
            for source in match.group(1).split():
                assert (ROOT / source).exists(), f"Dockerfile copies missing {source}"


def test_the_portal_trusts_only_the_proxy_in_front_of_it(compose: dict[str, Any]) -> None:
    """Rate limits key on the client: the only proxy whose X-Forwarded-For the portal believes is
    the compose file's own nginx, at a fixed address inside the compose network, and the portal is
    published on loopback only, so nobody reaches it around the proxy."""
    import ipaddress

    from veles.services.ratelimit import client_address, parse_trusted_proxies

    services = compose["services"]
    setting = services["portal"]["environment"]["TRUSTED_PROXIES"]
    default = re.fullmatch(r"\$\{TRUSTED_PROXIES:-(.+)\}", setting)
    assert default, "TRUSTED_PROXIES must be set for the portal (with the proxy's address as default)"
    trusted = parse_trusted_proxies(default.group(1))
    proxy_ip = services["proxy"]["networks"]["default"]["ipv4_address"]
    subnet = ipaddress.ip_network(compose["networks"]["default"]["ipam"]["config"][0]["subnet"])
    assert ipaddress.ip_address(proxy_ip) in subnet
    assert client_address(proxy_ip, "198.51.100.7", trusted) == "198.51.100.7"  # the client, not the proxy
    assert client_address("172.30.0.99", "198.51.100.7", trusted) == "172.30.0.99"  # no other container
    assert all(port.startswith("127.0.0.1:") for port in services["portal"]["ports"])
    assert "PUBLIC_URL" in services["portal"]["environment"]

    nginx = (DEPLOY / "nginx.conf").read_text()
    assert "proxy_set_header X-Forwarded-For $remote_addr;" in nginx  # replaced, never appended to
    assert "proxy_set_header X-Forwarded-Proto $scheme;" in nginx
    assert "proxy_pass http://portal:3000;" in nginx
    assert "proxy_set_header Upgrade $http_upgrade;" in nginx
    for mount in services["proxy"]["volumes"]:
        source = mount.split(":")[0]
        if source.endswith(".conf"):
            assert (DEPLOY / source).exists(), f"proxy mounts missing {source}"
