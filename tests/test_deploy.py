"""deploy/: the Dockerfile, compose.yaml, haproxy.cfg and Kubernetes manifests hold together.

They parse; every probe and health check asks a route ``create_app`` really serves, on the port
the gateway really listens on; every environment variable given to a gateway is one switchboard
(or uvicorn) reads; HAProxy accepts its configuration (``haproxy -c``).
"""

from __future__ import annotations

import re
import shlex
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient

from switchboard.app import create_app
from switchboard.config import Settings, load_settings
from tests.cluster.processes import require_haproxy

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
PORT = 8080
#: read by uvicorn itself, not by Settings (trust the balancer's X-Forwarded-For)
UVICORN_ENV = {"FORWARDED_ALLOW_IPS"}


def _docs(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text("utf-8")) if doc]


def _manifests() -> dict[str, dict[str, Any]]:
    """Every Kubernetes object of deploy/k8s, by kind."""
    found: dict[str, dict[str, Any]] = {}
    for path in sorted(K8S.glob("*.yaml")):
        for doc in _docs(path):
            found[doc["kind"]] = doc
    return found


def _served(tmp_path: Path, paths: set[str]) -> dict[str, int]:
    """What the app answers a GET of each path (after its start-up, as a probe sees it)."""
    settings = load_settings(
        SWITCHBOARD_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'calls.db'}",
        SWITCHBOARD_API_TOKEN="deploy-test-token-0123456789abcdef",
    )
    with TestClient(create_app(settings)) as client:
        return {path: client.get(path).status_code for path in sorted(paths)}


def _settings_env() -> set[str]:
    return {field.alias for field in Settings.model_fields.values() if field.alias}


def _container() -> dict[str, Any]:
    deployment = _manifests()["Deployment"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return dict(container)


def _compose() -> dict[str, Any]:
    return dict(yaml.safe_load((DEPLOY / "compose.yaml").read_text("utf-8")))


def _gateways() -> dict[str, dict[str, Any]]:
    services = _compose()["services"]
    return {name: svc for name, svc in services.items() if name.startswith("gateway")}


def _dockerfile() -> str:
    return (DEPLOY / "Dockerfile").read_text("utf-8")


def _haproxy() -> str:
    return (DEPLOY / "haproxy.cfg").read_text("utf-8")


def _port_of(argv: list[str]) -> int:
    return int(argv[argv.index("--port") + 1])


def test_every_manifest_parses_and_the_kinds_are_there() -> None:
    kinds = set(_manifests())
    assert {"Deployment", "Service", "PodDisruptionBudget", "ConfigMap", "Secret"} <= kinds
    kustomization = _docs(K8S / "kustomization.yaml")[0]
    listed = set(kustomization["resources"])
    assert listed == {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    services = set(_compose()["services"])
    assert {"gateway-1", "gateway-2", "redis", "postgres", "haproxy"} <= services


def test_probes_and_health_checks_ask_routes_the_app_serves(tmp_path: Path) -> None:
    container = _container()
    probes = {
        kind: container[kind]["httpGet"]
        for kind in ("livenessProbe", "readinessProbe", "startupProbe")
    }
    assert probes["livenessProbe"]["path"] == "/healthz"  # the process, never its dependencies
    assert probes["readinessProbe"]["path"] == "/readyz"
    (http_port,) = [p for p in container["ports"] if p["name"] == "http"]
    for probe in probes.values():
        assert probe["port"] == "http"
    assert http_port["containerPort"] == PORT == _port_of(container["args"])
    asked = {probe["path"] for probe in probes.values()}

    # the image's HEALTHCHECK, and the port the image serves
    health = re.search(r"HEALTHCHECK .*?http://127\.0\.0\.1:(\d+)(/\w+)", _dockerfile(), re.S)
    assert health is not None
    assert (int(health.group(1)), health.group(2)) == (PORT, "/healthz")
    asked.add(health.group(2))
    cmd = re.search(r"^CMD (\[.*\])$", _dockerfile(), re.M)
    assert cmd is not None and _port_of(yaml.safe_load(cmd.group(1))) == PORT
    assert f"EXPOSE {PORT}" in _dockerfile()

    # HAProxy checks readiness, on the port the gateways serve
    check = re.search(r"option httpchk GET (\S+)", _haproxy())
    assert check is not None and check.group(1) == "/readyz"
    asked.add(check.group(1))
    servers = re.findall(r"^\s*server (\S+) (\S+):(\d+)", _haproxy(), re.M)
    assert {(name, host) for name, host, _ in servers} == {(g, g) for g in _gateways()}
    assert {int(port) for *_, port in servers} == {PORT}
    for svc in _gateways().values():
        assert _port_of(svc["command"]) == PORT
        assert "--workers" in svc["command"]  # two gateways of several workers each

    # a started app answers each of them: 200 (or 503 for a node not ready), never 404/405
    answers = _served(tmp_path, asked)
    assert answers["/healthz"] == 200
    assert all(status in (200, 503) for status in answers.values()), answers

    # the Service and the PodDisruptionBudget select the Deployment's pods
    manifests = _manifests()
    labels = manifests["Deployment"]["spec"]["template"]["metadata"]["labels"]
    assert manifests["Deployment"]["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert manifests["Service"]["spec"]["selector"].items() <= labels.items()
    pdb_selector = manifests["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"]
    assert pdb_selector.items() <= labels.items()
    assert {p["targetPort"] for p in manifests["Service"]["spec"]["ports"]} == {"http"}


def test_draining_fits_in_the_grace_period() -> None:
    """preStop, then SIGTERM starts the drain (30 s by default): all inside the grace period."""
    deployment = _manifests()["Deployment"]["spec"]["template"]["spec"]
    pre_stop = _container()["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep"
    drain_s = 30
    assert deployment["terminationGracePeriodSeconds"] >= int(pre_stop[1]) + drain_s + 5
    assert deployment["securityContext"]["runAsNonRoot"] is True
    grace = _compose()["x-gateway"]["stop_grace_period"]
    assert int(grace.rstrip("s")) >= drain_s + 5


def test_every_environment_variable_is_one_switchboard_reads() -> None:
    known = _settings_env() | UVICORN_ENV
    manifests = _manifests()
    given: dict[str, str] = {}
    for kind in ("ConfigMap",):
        given |= {name: kind for name in manifests[kind]["data"]}
    given |= {name: "Secret" for name in manifests["Secret"]["stringData"]}
    given |= {env["name"]: "Deployment" for env in _container().get("env", [])}
    for name, svc in _gateways().items():
        given |= {var: name for var in svc["environment"]}
    for line in (DEPLOY / "example.env").read_text("utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            given[line.split("=", 1)[0]] = "example.env"
    unknown = {name: where for name, where in given.items() if name not in known}
    assert unknown == {}
    # and the ones a cluster cannot do without are given
    cluster = {"SWITCHBOARD_REDIS_URL", "SWITCHBOARD_DATABASE_URL", "SWITCHBOARD_PUBLIC_URL"}
    for name, svc in _gateways().items():
        assert cluster <= set(svc["environment"]), name
    assert cluster <= set(given)


def test_the_image_is_slim_non_root_and_has_the_cluster_extras() -> None:
    text = _dockerfile()
    stages = re.findall(r"^FROM (\S+)", text, re.M)
    assert stages[-1] == "python:3.11-slim"
    users = re.findall(r"^USER (\S+)", text, re.M)
    assert users and users[-1] not in {"root", "0"}
    assert "HEALTHCHECK" in text
    extras = re.search(r'\[(\w+(?:,\w+)*)\]"', text)
    assert extras is not None
    wanted = set(extras.group(1).split(","))
    assert wanted >= {"postgres", "cluster"}
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))
    assert wanted <= set(pyproject["project"]["optional-dependencies"])
    entry = re.search(r"^ENTRYPOINT (\[.*\])$", text, re.M)
    assert entry is not None and yaml.safe_load(entry.group(1)) == ["switchboard"]
    assert "switchboard" in pyproject["project"]["scripts"]


def test_haproxy_accepts_its_configuration() -> None:
    binary = require_haproxy()
    result = subprocess.run(
        [binary, "-c", "-f", str(DEPLOY / "haproxy.cfg")],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Configuration file is valid" in result.stdout + result.stderr
    assert "timeout tunnel" in _haproxy()  # WebSockets (media) outlive the HTTP timeouts


@pytest.mark.parametrize("name", ["gateway-1", "gateway-2"])
def test_each_compose_gateway_is_a_named_node(name: str) -> None:
    env = _gateways()[name]["environment"]
    assert env["SWITCHBOARD_NODE_ID"] == name
    argv = _gateways()[name]["command"]
    assert shlex.join(argv).startswith("serve ")
