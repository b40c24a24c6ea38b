"""deploy/ cannot be run here (no Docker engine), so check what can be checked without one."""

from __future__ import annotations

import copy
import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from tests.deploy_support import METRIC_NAME
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
    assert "server portal:3000;" in nginx
    assert "proxy_set_header Upgrade $http_upgrade;" in nginx
    for mount in services["proxy"]["volumes"]:
        source = mount.split(":")[0]
        if source.endswith(".conf"):
            assert (DEPLOY / source).exists(), f"proxy mounts missing {source}"


# -- nginx ------------------------------------------------------------------------------------------

def _nginx_locations(text: str) -> dict[str, str]:
    """Each `location X { ... }` block of the TLS server, by its path."""
    return {m.group(1): m.group(2) for m in re.finditer(r"location\s+(?:=\s*)?(\S+)\s*\{([^}]*)\}", text)}


def test_nginx_config_is_accepted_by_the_real_nginx(tmp_path: Path) -> None:
    """`nginx -t` (Debian's nginx 1.22, older than compose's 1.27: the file must run on both)."""
    from tests.deploy_support import free_port, nginx_check, nginx_config

    checked = nginx_check(nginx_config(tmp_path, "127.0.0.1:3000", free_port(), free_port()))
    assert checked.returncode == 0, checked.stderr


def test_nginx_serves_what_the_portal_really_uses() -> None:
    """The paths the portal serves (Reflex's event socket, the integrations socket) are upgraded
    to WebSockets with timeouts far past nginx's 60 s default; bodies are limited above Veles' own
    MAX_REQUEST_BYTES so Veles' clear 413 is what most clients see; /metrics is not served."""
    from veles.api.realtime import SOCKETIO_PATH

    text = (DEPLOY / "nginx.conf").read_text()
    locations = _nginx_locations(text)
    event_path = "/" + get_config_event_path()
    for path in (event_path, SOCKETIO_PATH):
        assert path in locations, f"nginx has no location for {path}"
        assert re.search(r"proxy_read_timeout\s+(\d+)h;", locations[path]), f"{path} keeps the 60 s default"
        assert "proxy_buffering off;" in locations[path]
    # the upgrade headers are set once, at server level, and no location overrides the set
    assert "proxy_set_header Connection $connection_upgrade;" in text
    assert all("proxy_set_header" not in body for body in locations.values())
    assert locations["/metrics"].strip() == "return 404;"
    limit = re.search(r"client_max_body_size\s+(\d+)m;", text)
    assert limit
    assert int(limit.group(1)) << 20 > Settings.model_fields["max_request_bytes"].default
    assert "listen 443 ssl http2;" in text
    assert "ssl_certificate " in text


def get_config_event_path() -> str:
    """Reflex's event endpoint path (without the slash), as the built front end opens it."""
    from reflex_base.constants import Endpoint

    return str(Endpoint.EVENT.value).strip("/")


# -- Prometheus, alert rules, Grafana ---------------------------------------------------------------

def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("promtool")
    if binary is None:
        pytest.fail("promtool is required (scripts/setup.sh --test installs Debian's prometheus)")
    return subprocess.run([binary, *args], capture_output=True, text=True, timeout=60)


def test_promtool_accepts_the_config_and_the_rules() -> None:
    config = _promtool("check", "config", "--syntax-only", str(DEPLOY / "prometheus" / "prometheus.yml"))
    assert config.returncode == 0, config.stdout + config.stderr
    rules = _promtool("check", "rules", str(DEPLOY / "prometheus" / "alerts.yml"))
    assert rules.returncode == 0, rules.stdout + rules.stderr


def test_alert_rules_fire_as_intended_in_promtool_unit_tests() -> None:
    """deploy/prometheus/alerts.test.yml: the stall, delivery and recovery rules on made-up series."""
    tested = _promtool("test", "rules", str(DEPLOY / "prometheus" / "alerts.test.yml"))
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout + tested.stderr


@pytest.fixture(scope="module")
def exposition(tmp_path_factory: pytest.TempPathFactory, redis_url_module: str) -> str:
    """What a portal's /metrics answers (the API app as the portal mounts it, engines' stats read
    from the test Redis): every family is declared even before any tenant has a sample."""
    from fastapi.testclient import TestClient

    from veles.api import create_api

    settings = Settings(_env_file=None, database_url=f"sqlite:///{tmp_path_factory.mktemp('m') / 'm.db'}",
                        redis_url=redis_url_module, ray_address=None)
    with TestClient(create_api(settings), client=("127.0.0.1", 50_000)) as client:
        response = client.get("/metrics")
    assert response.status_code == 200
    return response.text


def test_every_alert_rule_and_dashboard_query_names_an_exported_metric(exposition: str) -> None:
    from tests.deploy_support import alert_rules, dashboard_metric_names, exported_names

    exported = exported_names(exposition)
    for name in ("veles_engine_last_poll_timestamp_seconds", "veles_engine_polls_merged_total",
                 "veles_web_sessions", "veles_engine_lag_seconds_bucket", "veles_delivery_failures_total"):
        assert name in exported, name
    for rule in alert_rules():
        names = set(METRIC_NAME.findall(rule["expr"])) - {"ray_"}
        assert names or "up{" in rule["expr"].replace(" ", ""), rule["alert"]
        assert names <= exported, f"{rule['alert']} uses metrics /metrics does not export: {names - exported}"
        assert rule["labels"]["severity"] in {"critical", "warning"}
        assert rule["annotations"]["summary"]
    missing = dashboard_metric_names() - exported
    assert not missing, f"the dashboard queries metrics /metrics does not export: {missing}"


def test_grafana_dashboard_is_importable() -> None:
    """Parses, one datasource input, unique panel ids, each panel on the grid with at least one
    query, and it covers book latency, engine health and portal load."""
    dashboard = json.loads((DEPLOY / "grafana" / "veles-dashboard.json").read_text())
    assert [i["name"] for i in dashboard["__inputs"]] == ["DS_PROMETHEUS"]
    panels = dashboard["panels"]
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids))
    rows = [p["title"] for p in panels if p["type"] == "row"]
    assert rows == ["Book latency", "Engine health", "Portal load"]
    for panel in panels:
        assert {"h", "w", "x", "y"} <= set(panel["gridPos"])
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == "${DS_PROMETHEUS}"
            assert panel["targets"]
            assert all(t["expr"] and t["refId"] for t in panel["targets"])


# -- Kubernetes -------------------------------------------------------------------------------------

K8S_VERSION = "1.30"
KUBE = DEPLOY / "kubernetes"


def _k8s_documents() -> list[dict[str, Any]]:
    return [doc for path in sorted(KUBE.glob("*.yaml"))
            for doc in yaml.safe_load_all(path.read_text()) if doc]


def _validate_k8s(doc: dict[str, Any]) -> None:
    """Against Kubernetes' own schema (kubernetes-validate ships them; strict: unknown fields
    refused), or for KubeRay's RayCluster against deploy/kubernetes/schemas with its pod
    templates against the core PodTemplateSpec."""
    import jsonschema
    import kubernetes_validate

    if doc["kind"] != "RayCluster":
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
        return
    schema = json.loads((KUBE / "schemas" / "raycluster-ray-v1.json").read_text())
    jsonschema.Draft202012Validator(schema).validate(doc)
    groups = [doc["spec"]["headGroupSpec"], *doc["spec"].get("workerGroupSpecs", [])]
    for group in groups:
        kubernetes_validate.validate({"apiVersion": "v1", "kind": "PodTemplate", "metadata": {"name": "t"},
                                      "template": group["template"]}, K8S_VERSION, strict=True)


def test_kubernetes_manifests_validate_against_the_schemas() -> None:
    kinds = []
    for doc in _k8s_documents():
        _validate_k8s(doc)
        kinds.append(doc["kind"])
    assert {"RayCluster", "Deployment", "Service", "Secret", "ConfigMap", "Job", "Ingress"} <= set(kinds)


@pytest.mark.parametrize("damage", ["typo_in_pod", "typo_in_raycluster", "bad_replicas"])
def test_kubernetes_validation_catches_mistakes(damage: str) -> None:
    """The offline validation is not a rubber stamp: a misspelt field or a wrong type fails it."""
    import jsonschema
    import kubernetes_validate

    docs = {d["kind"]: d for d in _k8s_documents()}
    if damage == "typo_in_pod":
        doc = copy.deepcopy(docs["Deployment"])
        doc["spec"]["template"]["spec"]["containers"][0]["imagePullPolicyy"] = "Always"
    elif damage == "typo_in_raycluster":
        doc = copy.deepcopy(docs["RayCluster"])
        doc["spec"]["workerGroupSpecs"][0]["maxReplica"] = 3
    else:
        doc = copy.deepcopy(docs["RayCluster"])
        container = doc["spec"]["workerGroupSpecs"][0]["template"]["spec"]["containers"][0]
        container["ports"][0]["containerPort"] = "x"
    with pytest.raises((kubernetes_validate.ValidationError, jsonschema.ValidationError)):
        _validate_k8s(doc)


def _ray_start_options() -> set[str]:
    helped = subprocess.run([str(Path(sys.executable).parent / "ray"), "start", "--help"],
                            capture_output=True, text=True, timeout=120, check=True)
    return set(re.findall(r"--([a-z][a-z0-9-]*)", helped.stdout))


def test_ray_nodes_start_with_options_ray_has() -> None:
    """rayStartParams (KubeRay turns them into `ray start --KEY VALUE`) and the compose Ray
    services' commands use only options of the pinned Ray, and every node exports its metrics."""
    options = _ray_start_options()
    cluster = next(d for d in _k8s_documents() if d["kind"] == "RayCluster")
    groups = [cluster["spec"]["headGroupSpec"], *cluster["spec"]["workerGroupSpecs"]]
    for group in groups:
        assert set(group["rayStartParams"]) <= options, set(group["rayStartParams"]) - options
        assert group["rayStartParams"]["metrics-export-port"] == "8080"
    import ray

    assert cluster["spec"]["rayVersion"] == ray.__version__
    services = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())["services"]
    for name in ("ray-head", "ray-worker"):
        command = services[name]["command"]
        assert command[:2] == ["ray", "start"]
        used = {arg[2:] for arg in command if arg.startswith("--")}
        assert used <= options, used - options
        assert command[command.index("--metrics-export-port") + 1] == "8080"
    # Ray's metrics agent needs ray[default]: the image installs it at the version Veles pins
    assert f'"ray[default]=={ray.__version__}"' in (DEPLOY / "Dockerfile").read_text()
    worker = services["ray-worker"]["command"]
    assert worker[worker.index("--address") + 1] == "ray-head:6379"
    assert services["ray-head"]["command"][services["ray-head"]["command"].index("--port") + 1] == "6379"


def test_workloads_read_the_secret_and_config_that_exist() -> None:
    docs = _k8s_documents()
    names = {(d["kind"], d["metadata"]["name"]) for d in docs}
    env_sources = []
    for doc in docs:
        for template in _pod_templates(doc):
            for container in template["spec"]["containers"]:
                for source in container.get("envFrom", []):
                    env_sources.append(("Secret", source["secretRef"]["name"]) if "secretRef" in source
                                       else ("ConfigMap", source["configMapRef"]["name"]))
    assert env_sources
    assert set(env_sources) <= names
    config = next(d for d in docs if d["kind"] == "ConfigMap")
    secret = next(d for d in docs if d["kind"] == "Secret")
    fields = {name.upper() for name in Settings.model_fields}
    assert set(config["data"]) <= fields
    assert set(secret["stringData"]) - {"MIGRATE_DATABASE_URL"} <= fields
    assert config["data"]["VELES_ENV"] == "production"
    cluster = next(d for d in docs if d["kind"] == "RayCluster")
    assert config["data"]["RAY_ADDRESS"] == f"{cluster['metadata']['name']}-head-svc:6379"
    service = next(d for d in docs if d["kind"] == "Service" and d["metadata"]["name"] == "veles-portal")
    portal = next(d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "veles-portal")
    assert service["spec"]["selector"] == portal["spec"]["selector"]["matchLabels"]


def _pod_templates(doc: dict[str, Any]) -> list[dict[str, Any]]:
    if doc["kind"] == "RayCluster":
        return [g["template"] for g in [doc["spec"]["headGroupSpec"], *doc["spec"]["workerGroupSpecs"]]]
    if doc["kind"] in {"Deployment", "Job"}:
        return [doc["spec"]["template"]]
    return []


def test_no_deploy_template_ships_a_usable_secret() -> None:
    """The Secret template is empty, so a cluster given it unchanged refuses to start (as
    VELES_ENV=production does on any unsafe secret), and compose requires every secret from .env."""
    from veles.services.preflight import check_credentials_keys, check_secret_key

    secret = next(d for d in _k8s_documents() if d["kind"] == "Secret")
    assert all(value == "" for value in secret["stringData"].values()), secret["stringData"]
    env = {**next(d for d in _k8s_documents() if d["kind"] == "ConfigMap")["data"], **secret["stringData"]}
    settings = Settings(_env_file=None, **{k.lower(): v for k, v in env.items()
                                           if k.lower() in Settings.model_fields and v != ""},
                        secret_key="", credentials_keys="")
    assert check_secret_key(settings).problems
    assert check_credentials_keys(settings).problems

    compose = (DEPLOY / "docker-compose.yml").read_text()
    for name in ("SECRET_KEY", "CREDENTIALS_KEYS", "POSTGRES_PASSWORD", "APP_DATABASE_PASSWORD",
                 "METRICS_TOKEN"):
        uses = re.findall(rf"\$\{{{name}(:[?-])?[^}}]*\}}", compose)
        assert uses, name
        assert all(use == ":?" for use in uses), f"{name} must be required (${{{name}:?...}})"


def test_compose_runs_prometheus_on_the_shipped_files(compose: dict[str, Any]) -> None:
    prometheus = compose["services"]["prometheus"]
    for mount in prometheus["volumes"]:
        source = mount.split(":")[0]
        if source.startswith("./"):
            assert (DEPLOY / source).exists(), source
    assert prometheus["secrets"][0]["target"] == "/etc/prometheus/metrics-token"
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    portal_job = next(j for j in config["scrape_configs"] if j["job_name"] == "veles-portal")
    assert portal_job["authorization"]["credentials_file"] == "/etc/prometheus/metrics-token"
    assert portal_job["dns_sd_configs"][0]["names"] == ["portal"]
    assert all(p.startswith("127.0.0.1:") for p in prometheus["ports"])
