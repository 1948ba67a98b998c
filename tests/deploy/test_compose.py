"""The deployment files agree with the source tree and with each other.

No container engine runs here, so the production stack is checked as data: docker-compose.yml,
the Dockerfile, the collector config and the Kubernetes manifests, against the services found
on disk, the topics in `contracts/` and the settings classes the code reads its environment
with. Only the Dockerfile's health check is run (against a local HTTP server on loopback).
"""

from __future__ import annotations

import enum
import importlib
import json
import re
import shlex
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
COLLECTOR_CONFIG = ROOT / "deploy" / "otel-collector.yaml"
K8S_DIR = ROOT / "deploy" / "k8s"

GATEWAY = "gateway"
CODE_FOLDERS = ("servicekit", "contracts", "services", "gateway")
TOPICS = {
    "scrm.customer.events",
    "scrm.tagging.events",
    "scrm.loyalty.events",
    "scrm.coupon.events",
    "scrm.reach.events",
    "scrm.deadletter",
}
#: Read by the OpenTelemetry SDK itself, not by the settings classes.
OTEL_SDK_ENV = {"OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES", "OTEL_EXPORTER_OTLP_PROTOCOL"}
#: What a required compose variable (`${VAR:?}`) stands for in these tests.
TEST_SECRET = "test-secret-not-a-placeholder-0123456789"


def discover_services() -> list[str]:
    """Every folder under services/ is a service, whether or not its code has landed."""
    folder = ROOT / "services"
    if not folder.is_dir():
        return []
    return sorted(
        p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith(("_", "."))
    )


SERVICES = discover_services()
APPS = [*SERVICES, GATEWAY]


# --- reading compose ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text())


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


def factory(app: str) -> str:
    return "gateway.main:create_app" if app == GATEWAY else f"services.{app}.main:create_app"


def compose_name(app: str, services: dict[str, Any]) -> str:
    dashed = app.replace("_", "-")
    return dashed if dashed in services and app not in services else app


def argv(value: str | list[str] | None) -> list[str]:
    if value is None:
        return []
    return shlex.split(value) if isinstance(value, str) else [str(v) for v in value]


def command_of(service: dict[str, Any]) -> list[str]:
    return argv(service.get("entrypoint")) + argv(service.get("command"))


def port_of(service: dict[str, Any]) -> int:
    args = command_of(service)
    return int(args[args.index("--port") + 1])


def env_of(service: dict[str, Any]) -> dict[str, Any]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        pairs = (item.split("=", 1) if "=" in item else (item, None) for item in env)
        return dict(pairs)
    return dict(env)


def interpolate(value: Any) -> str:
    """Resolve compose interpolation: `${VAR:-default}` to the default, a required
    `${VAR:?error}` to a test secret, `$$` to `$`."""

    def resolve(match: re.Match[str]) -> str:
        operator, argument = match.group(2) or "", match.group(3) or ""
        if operator.endswith("-"):
            return argument
        return TEST_SECRET if operator.endswith("?") else ""

    text = str(value).replace("$$", "\0")
    text = re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}", resolve, text)
    return text.replace("\0", "$")


def strings_in(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [s for v in node.values() for s in strings_in(v)]
    if isinstance(node, list):
        return [s for v in node for s in strings_in(v)]
    return [node] if isinstance(node, str) else []


def depends_on(service: dict[str, Any]) -> dict[str, str]:
    deps = service.get("depends_on") or {}
    if isinstance(deps, list):
        return dict.fromkeys(deps, "service_started")
    return {name: (spec or {}).get("condition", "service_started") for name, spec in deps.items()}


def by_image(services: dict[str, Any], prefix: str) -> dict[str, dict[str, Any]]:
    return {n: s for n, s in services.items() if str(s.get("image", "")).startswith(prefix)}


def kafka_brokers(services: dict[str, Any]) -> dict[str, dict[str, Any]]:
    kafka = by_image(services, "apache/kafka:")
    return {n: s for n, s in kafka.items() if "KAFKA_PROCESS_ROLES" in env_of(s)}


def mongo_servers(services: dict[str, Any]) -> dict[str, dict[str, Any]]:
    mongo = by_image(services, "mongo:")
    return {n: s for n, s in mongo.items() if "--replSet" in command_of(s)}


def collector(services: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    found = by_image(services, "otel/opentelemetry-collector")
    assert len(found) == 1, "one OpenTelemetry collector service"
    return next(iter(found.items()))


# --- the apps ------------------------------------------------------------------------------


def test_compose_parses_and_the_services_were_found(compose: dict[str, Any]) -> None:
    assert isinstance(compose.get("services"), dict)
    assert SERVICES, "no service folder under services/"


@pytest.mark.parametrize("app", APPS)
def test_each_app_runs_its_factory(app: str, services: dict[str, Any]) -> None:
    name = compose_name(app, services)
    assert name in services, f"{app} is not a compose service"
    args = command_of(services[name])
    assert args[:1] == ["uvicorn"] and "--factory" in args, args
    assert factory(app) in args, f"{name} does not run {factory(app)}: {args}"
    assert args[args.index("--host") + 1] == "0.0.0.0"
    assert port_of(services[name]) > 0


def test_apps_listen_on_distinct_ports(services: dict[str, Any]) -> None:
    ports = [port_of(services[compose_name(app, services)]) for app in APPS]
    assert len(set(ports)) == len(ports), ports


def test_apps_share_one_image_built_from_the_dockerfile(services: dict[str, Any]) -> None:
    apps = [services[compose_name(app, services)] for app in APPS]
    images = {app.get("image") for app in apps}
    assert len(images) == 1 and None not in images, images
    for app in apps:
        build = app.get("build")
        assert build is not None, "every app is built from the Dockerfile"
        if isinstance(build, str):
            build = {"context": build}
        assert (ROOT / build.get("context", ".")).resolve() == ROOT
        assert (ROOT / build.get("dockerfile", "Dockerfile")).resolve() == DOCKERFILE


def test_only_the_gateway_publishes_a_port(services: dict[str, Any]) -> None:
    gateway = compose_name(GATEWAY, services)
    publishing = sorted(n for n, s in services.items() if s.get("ports"))
    assert publishing == [gateway]
    targets = [
        int(p["target"]) if isinstance(p, dict) else int(str(p).rsplit(":", 1)[-1])
        for p in services[gateway]["ports"]
    ]
    assert targets == [port_of(services[gateway])]


@pytest.mark.parametrize("app", APPS)
def test_each_app_has_a_healthcheck_on_its_own_port(app: str, services: dict[str, Any]) -> None:
    service = services[compose_name(app, services)]
    check = service.get("healthcheck")
    assert check and not check.get("disable"), "apps are health-checked"
    test = " ".join(argv(check["test"]))
    assert re.search(rf":{port_of(service)}/(healthz|readyz)\b", test), test
    assert service.get("restart") in {"always", "unless-stopped", "on-failure"}


# --- Kafka -----------------------------------------------------------------------------------


def test_kafka_runs_kraft_without_zookeeper(services: dict[str, Any]) -> None:
    assert not [n for n, s in services.items() if "zookeeper" in f"{n} {s.get('image', '')}"]
    brokers = kafka_brokers(services)
    assert brokers, "a Kafka service with KAFKA_PROCESS_ROLES"
    for broker in brokers.values():
        assert re.fullmatch(r"apache/kafka:3\.9\.\d+", broker["image"]), "pin apache/kafka 3.9.x"
        env = env_of(broker)
        roles = set(str(env["KAFKA_PROCESS_ROLES"]).split(","))
        assert roles and roles <= {"broker", "controller"}
        assert env.get("KAFKA_CONTROLLER_QUORUM_VOTERS")
        assert not any("ZOOKEEPER" in key for key in env)
        assert broker.get("healthcheck")
        # Replication can never exceed the number of brokers the stack runs.
        factors = {k: v for k, v in env.items() if k.endswith(("REPLICATION_FACTOR", "_ISR"))}
        factors["KAFKA_MIN_INSYNC_REPLICAS"] = env.get("KAFKA_MIN_INSYNC_REPLICAS", 1)
        assert all(int(v) <= len(brokers) for v in factors.values()), factors


def kafka_init_script(services: dict[str, Any]) -> str:
    jobs = [
        " ".join(command_of(s))
        for s in by_image(services, "apache/kafka:").values()
        if "kafka-topics" in " ".join(command_of(s))
    ]
    assert len(jobs) == 1, "one kafka-init job creating the topics"
    return jobs[0]


def test_kafka_init_creates_the_topics(services: dict[str, Any]) -> None:
    script = kafka_init_script(services)
    assert "--create" in script and "--if-not-exists" in script
    assert set(re.findall(r"\bscrm\.[a-z0-9_-]+(?:\.[a-z0-9_-]+)*", script)) == TOPICS


def test_kafka_init_creates_every_contract_topic(services: dict[str, Any]) -> None:
    topics = pytest.importorskip("contracts.topics")
    published: set[str] = set()
    for name, value in vars(topics).items():
        if isinstance(value, type) and issubclass(value, enum.Enum) and issubclass(value, str):
            if value.__module__ == topics.__name__:
                published |= {member.value for member in value}
        elif name.isupper() and name.endswith("TOPIC") and isinstance(value, str):
            published.add(value)
    assert published, "contracts.topics names no topic"
    missing = {t for t in published if t not in kafka_init_script(services)}
    assert not missing, f"kafka-init does not create {missing}"


# --- MongoDB ---------------------------------------------------------------------------------


def replica_set(services: dict[str, Any]) -> tuple[str, str]:
    servers = mongo_servers(services)
    assert len(servers) == 1, "one mongod started with --replSet"
    name, server = next(iter(servers.items()))
    args = command_of(server)
    return name, args[args.index("--replSet") + 1]


def test_mongodb_runs_a_replica_set_that_is_initiated(services: dict[str, Any]) -> None:
    host, set_name = replica_set(services)
    assert re.fullmatch(r"mongo:7(\.\d+)*", services[host]["image"]), "MongoDB 7"
    assert services[host].get("healthcheck")
    initiators = [
        text
        for s in services.values()
        for text in strings_in({k: s.get(k) for k in ("command", "entrypoint", "healthcheck")})
        if "rs.initiate" in text
    ]
    assert initiators, "something runs rs.initiate"
    assert all(set_name in t and f"{host}:27017" in t for t in initiators)


@pytest.mark.parametrize("app", SERVICES)
def test_each_service_writes_to_the_replica_set_with_majority(
    app: str, services: dict[str, Any]
) -> None:
    host, set_name = replica_set(services)
    uri = urlsplit(interpolate(env_of(services[compose_name(app, services)])["MONGODB_URI"]))
    query = {k: v[-1] for k, v in parse_qs(uri.query).items()}
    assert uri.scheme == "mongodb" and uri.hostname == host
    assert query.get("replicaSet") == set_name
    assert query.get("w") == "majority"
    assert query.get("retryWrites") == "true"


# --- the services' environment ------------------------------------------------------------


@pytest.mark.parametrize("app", SERVICES)
def test_each_service_has_its_environment(app: str, services: dict[str, Any]) -> None:
    env = env_of(services[compose_name(app, services)])
    prefix = app.upper()
    for name in ("KAFKA_BOOTSTRAP_SERVERS", "MONGODB_URI", "OTEL_EXPORTER_OTLP_ENDPOINT"):
        assert env.get(name), f"{app} lacks {name}"
    assert env.get("ENVIRONMENT") == "production"
    assert env.get(f"{prefix}_MONGODB_DATABASE"), f"{app} lacks {prefix}_MONGODB_DATABASE"
    assert str(env.get("KAFKA_IDEMPOTENT_PRODUCER")).lower() == "true"
    secret = env.get(f"{prefix}_SECRET_KEY")
    required = isinstance(secret, str) and re.fullmatch(r"\$\{\w+:?\?[^}]*\}", secret)
    env_file = services[compose_name(app, services)].get("env_file")
    assert required or env_file, f"{prefix}_SECRET_KEY must come from the operator, not compose"


def test_every_service_has_its_own_database(services: dict[str, Any]) -> None:
    names = [
        env_of(services[compose_name(app, services)])[f"{app.upper()}_MONGODB_DATABASE"]
        for app in SERVICES
    ]
    assert len(set(names)) == len(names), names


@pytest.mark.parametrize("app", SERVICES)
def test_kafka_address_is_an_advertised_listener(app: str, services: dict[str, Any]) -> None:
    bootstrap = env_of(services[compose_name(app, services)])["KAFKA_BOOTSTRAP_SERVERS"]
    brokers = kafka_brokers(services)
    for address in str(bootstrap).split(","):
        host = address.rsplit(":", 1)[0]
        assert host in brokers, f"{address} is not a Kafka service"
        assert f"//{address}" in env_of(brokers[host])["KAFKA_ADVERTISED_LISTENERS"]


@pytest.mark.parametrize("app", APPS)
def test_telemetry_goes_to_the_collector(app: str, services: dict[str, Any]) -> None:
    name, _ = collector(services)
    endpoint = urlsplit(
        env_of(services[compose_name(app, services)])["OTEL_EXPORTER_OTLP_ENDPOINT"]
    )
    http_port = collector_config()["receivers"]["otlp"]["protocols"]["http"]["endpoint"]
    assert (endpoint.scheme, endpoint.hostname) == ("http", name)
    assert str(endpoint.port) == http_port.rsplit(":", 1)[-1]


def test_gateway_urls_point_at_the_services(services: dict[str, Any]) -> None:
    env = env_of(services[compose_name(GATEWAY, services)])
    assert env.get("ENVIRONMENT") == "production"
    expected = {
        f"GATEWAY_{app.upper()}_URL": (
            f"http://{compose_name(app, services)}:{port_of(services[compose_name(app, services)])}"
        )
        for app in SERVICES
    }
    urls = {k: v for k, v in env.items() if re.fullmatch(r"GATEWAY_\w+_URL", k)}
    assert urls == expected


def test_environment_values_are_strings_compose_accepts(services: dict[str, Any]) -> None:
    for name, service in services.items():
        for key, value in env_of(service).items():
            assert not isinstance(value, bool), f"{name}.{key}: quote booleans ('true')"


def test_dollars_are_interpolations_or_escaped(compose: dict[str, Any]) -> None:
    """A shell `$var` in a command would be replaced by compose from the host's env."""
    for text in strings_in(compose):
        bare = re.sub(r"\$\{[A-Za-z_]\w*(?::?[-?][^}]*)?\}", "", text.replace("$$", ""))
        assert "$" not in bare, f"unescaped $ in {text[:80]!r}"


# --- wiring ----------------------------------------------------------------------------------


def test_depends_on_targets_exist_and_can_satisfy_their_condition(
    services: dict[str, Any],
) -> None:
    image_has_healthcheck = "HEALTHCHECK" in DOCKERFILE.read_text()
    for name, service in services.items():
        for target, condition in depends_on(service).items():
            assert target in services, f"{name} depends on unknown {target}"
            dependency = services[target]
            if condition == "service_healthy":
                built_here = dependency.get("build") is not None and image_has_healthcheck
                assert dependency.get("healthcheck") or built_here, f"{target} has no healthcheck"
            elif condition == "service_completed_successfully":
                assert dependency.get("restart", "no") in {"no", "on-failure"}, target
            else:
                assert condition == "service_started", condition


def test_networks_and_volumes_are_declared(compose: dict[str, Any]) -> None:
    networks = set(compose.get("networks") or {}) | {"default"}
    volumes = set(compose.get("volumes") or {})
    for name, service in compose["services"].items():
        used = service.get("networks") or []
        assert set(used) <= networks, f"{name} uses undeclared networks"
        for mount in service.get("volumes") or []:
            source = mount["source"] if isinstance(mount, dict) else str(mount).split(":")[0]
            if source.startswith((".", "/")):
                assert (ROOT / source).exists(), f"{name} mounts missing {source}"
            else:
                assert source in volumes, f"{name} uses undeclared volume {source}"


# --- the Dockerfile -----------------------------------------------------------------------


def dockerfile_instructions() -> list[str]:
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    return [line.strip() for line in text.splitlines() if line.strip()[:1] not in ("", "#")]


def test_dockerfile_builds_with_uv_without_dev_or_embedded() -> None:
    lines = dockerfile_instructions()
    stages = [line for line in lines if line.upper().startswith("FROM ")]
    assert len(stages) >= 2, "multi-stage build"
    assert "python:3.11" in DOCKERFILE.read_text()
    assert any("pip install" in line and "uv" in line for line in lines)
    sync = [line for line in lines if "uv sync" in line]
    assert sync, "uv sync installs the dependencies"
    for line in sync:
        assert "--frozen" in line and "--no-dev" in line
        assert re.search(r"--no-group[ =]embedded\b", line), line


def test_dockerfile_runtime_runs_the_code_as_a_non_root_user() -> None:
    lines = dockerfile_instructions()
    final = lines[max(i for i, line in enumerate(lines) if line.upper().startswith("FROM ")) :]
    users = [line.split()[1] for line in final if line.upper().startswith("USER ")]
    assert users and users[-1].split(":")[0] not in {"root", "0"}
    assert any(re.search(r"\bPYTHONPATH=/app\b", line) for line in final)
    copied = " ".join(line for line in final if line.upper().startswith("COPY "))
    for folder in CODE_FOLDERS:
        assert re.search(rf"\b{folder}/?\s", copied), f"{folder} is not copied"
    cmd = next(line for line in reversed(final) if line.upper().startswith("CMD "))
    assert "gateway.main:create_app" in cmd


def test_dockerignore_keeps_secrets_and_the_venv_out() -> None:
    lines = [ln.strip() for ln in DOCKERIGNORE.read_text().splitlines()]
    rules = [ln for ln in lines if ln and not ln.startswith("#")]
    if "*" in rules:
        for needed in (*CODE_FOLDERS, "pyproject.toml", "uv.lock"):
            assert f"!{needed}" in rules or f"!{needed}/" in rules, needed
    else:
        assert {".git", ".venv", ".env"} <= set(rules)


class _Health(BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        self.send_response(self.status if self.path == "/healthz" else 404)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.mark.parametrize(("status", "healthy"), [(200, True), (503, False)])
def test_image_healthcheck_probes_the_port_on_its_command_line(
    status: int, healthy: bool, tmp_path: Path
) -> None:
    line = next(ln for ln in dockerfile_instructions() if ln.upper().startswith("HEALTHCHECK"))
    exec_form = json.loads(line[line.index("CMD") + 3 :].strip())
    assert exec_form[:2] == ["python", "-c"]
    handler = type("Health", (_Health,), {"status": status})
    server = HTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        cmdline = tmp_path / "cmdline"
        args = ["/sbin/docker-init", "--", "uvicorn", "--port", str(server.server_port)]
        cmdline.write_bytes(b"\0".join(a.encode() for a in args) + b"\0")
        code = exec_form[2].replace("/proc/1/cmdline", str(cmdline))
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=20)
    finally:
        server.shutdown()
        server.server_close()
    assert (result.returncode == 0) is healthy, result.stderr.decode()


# --- the collector ---------------------------------------------------------------------------


def collector_config() -> dict[str, Any]:
    return yaml.safe_load(COLLECTOR_CONFIG.read_text())


def test_collector_config_receives_otlp_and_its_pipelines_are_defined() -> None:
    config = collector_config()
    assert {"grpc", "http"} <= set(config["receivers"]["otlp"]["protocols"])
    pipelines = config["service"]["pipelines"]
    assert "traces" in pipelines
    for pipeline in pipelines.values():
        for kind in ("receivers", "processors", "exporters"):
            for component in pipeline.get(kind, []):
                assert component in (config.get(kind) or {}), f"{component} is not defined"
    for extension in config["service"].get("extensions", []):
        assert extension in config["extensions"]


def test_compose_mounts_the_collector_config(services: dict[str, Any]) -> None:
    _, service = collector(services)
    mounts = [str(m).split(":") for m in service.get("volumes", [])]
    targets = [
        target for source, target, *_ in mounts if (ROOT / source).resolve() == COLLECTOR_CONFIG
    ]
    assert targets, "deploy/otel-collector.yaml is not mounted"
    assert f"--config={targets[0]}" in command_of(service)


# --- Kubernetes ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def manifests() -> list[dict[str, Any]]:
    docs = [
        doc
        for path in sorted(K8S_DIR.glob("*.y*ml"))
        for doc in yaml.safe_load_all(path.read_text())
        if doc
    ]
    assert all(isinstance(doc, dict) and "kind" in doc for doc in docs)
    return docs


def of_kind(manifests: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in manifests if d["kind"] == kind}


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def container_port(deployment: dict[str, Any]) -> int:
    args = argv(container(deployment).get("command")) + argv(container(deployment).get("args"))
    return int(args[args.index("--port") + 1])


def test_kustomization_lists_every_manifest(manifests: list[dict[str, Any]]) -> None:
    kustomization = yaml.safe_load((K8S_DIR / "kustomization.yaml").read_text())
    listed = set(kustomization["resources"])
    on_disk = {p.name for p in K8S_DIR.glob("*.y*ml")} - {"kustomization.yaml"}
    assert listed == on_disk
    assert of_kind(manifests, "Namespace")


@pytest.mark.parametrize("app", APPS)
def test_each_app_has_a_deployment_with_probes_and_requests(
    app: str, manifests: list[dict[str, Any]]
) -> None:
    deployments = {
        name: d
        for name, d in of_kind(manifests, "Deployment").items()
        if factory(app) in argv(container(d).get("command")) + argv(container(d).get("args"))
    }
    assert len(deployments) == 1, f"one Deployment runs {factory(app)}"
    deployment = next(iter(deployments.values()))
    spec = container(deployment)
    assert spec["readinessProbe"]["httpGet"]["path"] == "/readyz"
    if app != GATEWAY:  # the gateway's /healthz aggregates the services: not for liveness
        assert spec["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert spec["livenessProbe"]
    assert {"cpu", "memory"} <= set(spec["resources"]["requests"])
    config_maps = of_kind(manifests, "ConfigMap")
    for source in spec.get("envFrom", []):
        if "configMapRef" in source:
            assert source["configMapRef"]["name"] in config_maps
    env = {e["name"] for e in spec.get("env", [])}
    if app != GATEWAY:
        assert f"{app.upper()}_MONGODB_DATABASE" in env
        assert {"MONGODB_URI", f"{app.upper()}_SECRET_KEY"} <= env


def test_each_deployment_has_a_service_on_its_port(manifests: list[dict[str, Any]]) -> None:
    services = of_kind(manifests, "Service")
    for name, deployment in of_kind(manifests, "Deployment").items():
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        matching = [s for s in services.values() if s["spec"]["selector"].items() <= labels.items()]
        assert len(matching) == 1, f"one Service selects {name}"
        assert container_port(deployment) in [p["port"] for p in matching[0]["spec"]["ports"]]


def test_k8s_gateway_urls_point_at_the_services(manifests: list[dict[str, Any]]) -> None:
    deployments = of_kind(manifests, "Deployment")
    gateway = next(d for d in deployments.values() if factory(GATEWAY) in str(container(d)))
    env = {e["name"]: e.get("value") for e in container(gateway).get("env", [])}
    for app in SERVICES:
        deployment = next(d for d in deployments.values() if factory(app) in str(container(d)))
        service = deployment["metadata"]["name"]
        expected = f"http://{service}:{container_port(deployment)}"
        assert env.get(f"GATEWAY_{app.upper()}_URL") == expected


# --- the settings classes ------------------------------------------------------------------


def settings_classes(module: Any) -> list[type]:
    from pydantic_settings import BaseSettings

    return [
        obj
        for obj in vars(module).values()
        if isinstance(obj, type) and issubclass(obj, BaseSettings) and obj is not BaseSettings
    ]


def env_names(cls: Any) -> dict[str, str]:
    """The variables a settings class reads, upper-cased, mapped to the field they fill."""
    from pydantic import AliasChoices, AliasPath

    prefix = cls.model_config.get("env_prefix") or ""
    names: dict[str, str] = {}
    for field_name, field in cls.model_fields.items():
        alias = field.validation_alias or field.alias
        choices = alias.choices if isinstance(alias, AliasChoices) else [alias] if alias else []
        aliases = [c.path[0] if isinstance(c, AliasPath) else c for c in choices]
        for env in [a for a in aliases if isinstance(a, str)] or [prefix + field_name]:
            names[env.upper()] = field_name
    return names


def own_settings(app: str) -> list[type]:
    """The settings classes an app defines itself (in its settings.py or config.py)."""
    package = GATEWAY if app == GATEWAY else f"services.{app}"
    classes = []
    for module_name in ("settings", "config"):
        if (ROOT / package.replace(".", "/") / f"{module_name}.py").exists():
            module = importlib.import_module(f"{package}.{module_name}")
            classes += [c for c in settings_classes(module) if c.__module__ == module.__name__]
    return classes


def accepted_names(app: str, kit: Any) -> tuple[dict[str, str], list[type]]:
    own = own_settings(app)
    if own:
        return {k: v for cls in own for k, v in env_names(cls).items()}, own
    # No settings of its own yet: servicekit's classes, their plain fields under the
    # app's prefix (how a ServiceSettings subclass reads them).
    accepted: dict[str, str] = {}
    for cls in settings_classes(kit):
        for env, field in env_names(cls).items():
            accepted.setdefault(env, field)
            if env == field.upper():
                accepted.setdefault(f"{app.upper()}_{env}", field)
    return accepted, []


@pytest.mark.parametrize("app", APPS)
def test_compose_env_names_are_settings_fields(app: str, services: dict[str, Any]) -> None:
    kit = pytest.importorskip("servicekit.settings")
    accepted, own = accepted_names(app, kit)
    env = env_of(services[compose_name(app, services)])
    unknown = sorted(n for n in env if n.upper() not in accepted and n not in OTEL_SDK_ENV)
    if unknown and not own:
        pytest.skip(f"{app} has no settings class yet to read {unknown}")
    assert not unknown, f"{app}: compose sets variables its settings do not read: {unknown}"


def _same(actual: Any, expected: str) -> bool:
    if hasattr(actual, "get_secret_value"):
        actual = actual.get_secret_value()
    if isinstance(actual, bool):
        return actual is (expected.lower() in {"1", "true", "yes", "on"})
    if isinstance(actual, int | float):
        return actual == type(actual)(expected)
    return str(actual) == expected


@pytest.mark.parametrize("app", APPS)
def test_settings_read_the_compose_environment(
    app: str, services: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each app's own settings class, built from the compose environment, holds its values
    (this also runs the production checks, such as refusing placeholder secrets)."""
    pytest.importorskip("servicekit.settings")
    own = own_settings(app)
    if not own:
        pytest.skip(f"{app} has no settings class yet")
    env = {k: interpolate(v) for k, v in env_of(services[compose_name(app, services)]).items()}
    cls = max(own, key=lambda c: len(set(env_names(c)) & set(env)))
    names = env_names(cls)
    for name in names:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = cls()
    for name, value in env.items():
        if name.upper() in names:
            field = names[name.upper()]
            assert _same(getattr(settings, field), value), f"{app}: {name} -> {field}"
