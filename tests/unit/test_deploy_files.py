"""Offline checks of the deployment files: compose, Kubernetes, Prometheus, Grafana, Dockerfile.

Nothing here needs Docker, a cluster, Prometheus or Grafana. The settings classes of the
services are the reference for every ``CLIPMIX_*`` name the files use, and for which values
are secrets. The checkers return lists of problems so that the tests at the bottom can prove
they fail on broken input.
"""

import functools
import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
import yaml
from pydantic import AliasChoices
from pydantic_settings import BaseSettings

from services.billing.config import BillingSettings
from services.gateway.config import GatewaySettings, RequestLogSettings
from services.jobs.app import _refuse_dev_secrets
from services.jobs.config import JobsSettings
from services.runtime.config import InsecureSettings, InvalidSetting, Renamed, ServiceSettings
from services.runtime.traffic import TrafficSettings
from services.simulator.app import SimulatorSettings
from services.status.config import StatusSettings
from services.webhooks.config import WebhooksSettings
from tests import tools

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
K8S = DEPLOY / "k8s"
# Optional overlays (siblings of the base: kustomize refuses an overlay inside its base).
K8S_OVERLAYS = DEPLOY / "k8s-overlays"
SIMULATOR_OVERLAY = K8S_OVERLAYS / "simulator"
PROMETHEUS = DEPLOY / "prometheus"
GRAFANA = DEPLOY / "grafana"
RUNBOOK = REPO / "docs" / "runbook.md"
# Alert runbooks: the operator runbook, and the observability doc for the SLO/queue alerts.
RUNBOOK_DOCS = ("docs/runbook.md", "docs/observability.md")

SERVICES: dict[str, int] = {
    "gateway": 8080,
    "jobs": 8081,
    "billing": 8082,
    "webhooks": 8083,
    "status": 8084,
}

SIMULATOR_PORT = 8090
# Where probes and Prometheus reach a service: the gateway's public port serves /readyz and
# /metrics only to the internal token, so deployments use its admin port (never published).
OPERATOR_PORTS: dict[str, int] = {**SERVICES, "gateway": 9180}

# The settings classes each process reads (build_app also reads TrafficSettings where a
# service reports traffic). The reference for every CLIPMIX_* name in the deploy files.
PROCESS_SETTINGS: dict[str, tuple[type[BaseSettings], ...]] = {
    "gateway": (GatewaySettings, RequestLogSettings, TrafficSettings),
    "jobs": (JobsSettings,),
    "billing": (BillingSettings,),
    "webhooks": (WebhooksSettings, TrafficSettings),
    "status": (StatusSettings,),
    "simulator": (SimulatorSettings,),
    "migrate": (ServiceSettings,),
}
# Compose-level variables that are not settings of any process.
COMPOSE_ONLY_VARIABLES = {"CLIPMIX_IMAGE"}
# A field holding a credential: by name, plus the two URLs that carry passwords.
SECRET_FIELD = re.compile(r"(?:^|_)(?:token|secret|key|password)$")
CREDENTIAL_URL_FIELDS = {"database_url", "amqp_url"}

# The metric names every service exports (the project's metrics contract).
COUNTERS = {
    "clipmix_http_requests_total",
    "clipmix_outbox_published_total",
    "clipmix_messages_consumed_total",
    "clipmix_messages_redelivered_total",
    "clipmix_jobs_transitions_total",
    "clipmix_webhook_attempts_total",
    "clipmix_billing_reservations_total",
    "clipmix_billing_settlements_total",
    "clipmix_status_job_outcomes_total",
    "clipmix_status_evaluations_total",
}
GAUGES = {
    "clipmix_outbox_backlog",
    "clipmix_outbox_oldest_age_seconds",
    "clipmix_queue_messages_ready",
    "clipmix_dead_letter_messages",
    "clipmix_status_component_severity",
}
HISTOGRAMS = {
    "clipmix_http_request_duration_seconds",
    "clipmix_message_handle_duration_seconds",
    "clipmix_job_run_duration_seconds",
}
SPEC_METRICS = COUNTERS | GAUGES | HISTOGRAMS
# Series names a query may use: the metrics, the histograms' exposed series, and `up`.
ALLOWED_SERIES = (
    COUNTERS
    | GAUGES
    | {f"{h}{suffix}" for h in HISTOGRAMS for suffix in ("_bucket", "_sum", "_count")}
    | {"up"}
)

# Containers listen on every interface of their own network namespace.
CONTAINER_HOST = "0.0.0.0"  # noqa: S104

REQUIRED_ALERTS = {
    "ClipMixApiErrorBudgetFastBurn",
    "ClipMixApiErrorBudgetSlowBurn",
    "ClipMixOutboxStalled",
    "ClipMixMessagesDeadLettered",
    "ClipMixServiceDown",
    "ClipMixJobErrorBudgetFastBurn",
    "ClipMixJobErrorBudgetSlowBurn",
    "ClipMixDeadLetterQueueGrowing",
    "ClipMixConsumerLagging",
}


# --------------------------------------------------------------------------- helpers


# libyaml when pyyaml has it: parsing is most of this module's run time.
_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@functools.cache
def _parsed(path: Path) -> tuple[Any, ...]:
    with path.open(encoding="utf-8") as fh:
        return tuple(doc for doc in yaml.load_all(fh, Loader=_LOADER) if doc is not None)


def load_yaml_docs(path: Path) -> list[Any]:
    """Every non-empty YAML document of a file (k8s files hold several); callers must not
    mutate what they get (parsed once per run)."""
    return list(_parsed(path))


def load_yaml(path: Path) -> Any:
    docs = load_yaml_docs(path)
    assert len(docs) == 1, f"{path} should hold exactly one YAML document"
    return docs[0]


def yaml_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.suffix in {".yml", ".yaml"} and p.is_file())


def github_slug(heading: str) -> str:
    """Anchor GitHub (and most Markdown renderers) generate for a heading."""
    text = re.sub(r"`([^`]*)`", r"\1", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def markdown_anchors(markdown: str) -> set[str]:
    """Anchors of all headings outside fenced code blocks, with GitHub's -1, -2 suffixes."""
    anchors: set[str] = set()
    seen: dict[str, int] = {}
    in_fence = False
    for line in markdown.splitlines():
        if line.lstrip().startswith("```"):
            in_fence = not in_fence
            continue
        if in_fence:
            continue
        match = re.match(r"^(#{1,6})\s+(.+?)\s*#*\s*$", line)
        if not match:
            continue
        slug = github_slug(match.group(2))
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        anchors.add(slug if count == 0 else f"{slug}-{count}")
    return anchors


PROMQL_KEYWORDS = {
    "and",
    "or",
    "unless",
    "bool",
    "offset",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "inf",
    "nan",
}


def promql_metric_names(expr: str) -> set[str]:
    """Metric names a PromQL expression selects (functions, labels, keywords left out)."""
    text = re.sub(r'"(?:\\.|[^"\\])*"', '""', expr)
    text = re.sub(r"'(?:\\.|[^'\\])*'", "''", text)
    text = re.sub(r"\{[^}]*\}", " ", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", " ", text)  # range and subquery selectors
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    text = re.sub(r"\$\{?\w+\}?", " ", text)  # Grafana variables
    names: set[str] = set()
    for match in re.finditer(r"(?<![\w.:])[A-Za-z_:][A-Za-z0-9_:]*", text):
        token = match.group(0)
        if text[match.end() :].lstrip().startswith("("):
            continue  # a function call
        if token.lower() in PROMQL_KEYWORDS:
            continue
        names.add(token)
    return names


def grafana_variable_metric_names(query: str) -> set[str]:
    """Metric names in a Grafana Prometheus variable query (label_values, query_result...)."""
    match = re.match(r"^\s*label_values\(\s*(.*)\s*,\s*\w+\s*\)\s*$", query, re.S)
    if match:
        return promql_metric_names(match.group(1))
    if re.match(r"^\s*label_values\(\s*\w+\s*\)\s*$", query):
        return set()
    match = re.match(r"^\s*query_result\((.*)\)\s*$", query, re.S)
    if match:
        return promql_metric_names(match.group(1))
    return promql_metric_names(query)


def alert_rule_problems(
    rules_doc: Any, anchors: set[str] | dict[str, set[str]], allowed: set[str]
) -> list[str]:
    """Everything wrong with a Prometheus rules file, as readable messages.

    ``anchors``: the headings of docs/runbook.md, or of each runbook document by path.
    """
    docs = anchors if isinstance(anchors, dict) else {"docs/runbook.md": anchors}
    problems: list[str] = []
    groups = rules_doc.get("groups") if isinstance(rules_doc, dict) else None
    if not groups:
        return ["rules file has no groups"]
    rules = [rule for group in groups for rule in group.get("rules") or []]
    recorded = {rule["record"] for rule in rules if "record" in rule}
    for rule in rules:
        name = rule.get("alert") or rule.get("record") or "<unnamed>"
        expr = rule.get("expr")
        if not isinstance(expr, str) or not expr.strip():
            problems.append(f"{name}: no expr")
            continue
        unknown = promql_metric_names(expr) - allowed - recorded
        if unknown:
            problems.append(f"{name}: expr uses unknown metrics {sorted(unknown)}")
        if "alert" not in rule:
            continue
        labels = rule.get("labels") or {}
        if labels.get("severity") not in {"critical", "warning", "info"}:
            problems.append(f"{name}: labels.severity missing or not critical/warning/info")
        annotations = rule.get("annotations") or {}
        if not str(annotations.get("summary") or "").strip():
            problems.append(f"{name}: annotations.summary missing")
        url = str(annotations.get("runbook_url") or "")
        path, _, anchor = url.partition("#")
        doc = next((d for d in docs if path.endswith(d)), None)
        if doc is None:
            problems.append(f"{name}: runbook_url {url!r} does not point at {' or '.join(docs)}")
        elif anchor not in docs[doc]:
            problems.append(f"{name}: runbook_url anchor #{anchor} is not a runbook heading")
    return problems


def iter_panels(panels: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from iter_panels(panel.get("panels") or [])


def dashboard_problems(dashboard: dict[str, Any], allowed: set[str]) -> list[str]:
    problems: list[str] = []
    for panel in iter_panels(dashboard.get("panels") or []):
        title = panel.get("title", "<untitled>")
        if panel.get("type") == "row":
            continue
        targets = panel.get("targets") or []
        if not targets:
            problems.append(f"panel {title!r} has no queries")
        for target in targets:
            expr = target.get("expr")
            if not isinstance(expr, str) or not expr.strip():
                problems.append(f"panel {title!r} has a target without expr")
                continue
            unknown = promql_metric_names(expr) - allowed
            if unknown:
                problems.append(f"panel {title!r} uses unknown metrics {sorted(unknown)}")
    for variable in (dashboard.get("templating") or {}).get("list") or []:
        if variable.get("type") != "query":
            continue
        query = variable.get("query")
        if isinstance(query, dict):
            query = query.get("query", "")
        unknown = grafana_variable_metric_names(str(query or "")) - allowed
        if unknown:
            problems.append(
                f"variable {variable.get('name')!r} uses unknown metrics {sorted(unknown)}"
            )
    return problems


@functools.cache
def _objects(root: Path) -> tuple[dict[str, Any], ...]:
    return tuple(
        {**doc, "_file": path.relative_to(DEPLOY).as_posix()}
        for path in yaml_files(root)
        for doc in load_yaml_docs(path)
        if "kind" in doc
    )


def k8s_objects() -> list[dict[str, Any]]:
    """The base manifests (deploy/k8s), what `kubectl apply -k deploy/k8s` applies."""
    return list(_objects(K8S))


def overlay_objects(overlay: Path = SIMULATOR_OVERLAY) -> list[dict[str, Any]]:
    """An overlay's own files: its resources, its patches and its kustomization."""
    return list(_objects(overlay))


def by_kind(
    kind: str, objects: Iterable[dict[str, Any]] | None = None
) -> dict[str, dict[str, Any]]:
    found = k8s_objects() if objects is None else objects
    return {obj["metadata"]["name"]: obj for obj in found if obj["kind"] == kind}


def pod_templates(objects: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Pod spec of every Deployment and Job, by object name."""
    return {
        obj["metadata"]["name"]: obj["spec"]["template"]["spec"]
        for obj in objects
        if obj["kind"] in {"Deployment", "Job"}
    }


def secret_key_refs(container: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """Env name -> (Secret name, key) of every secretKeyRef of a container."""
    refs: dict[str, tuple[str, str]] = {}
    for var in container.get("env") or []:
        ref = (var.get("valueFrom") or {}).get("secretKeyRef")
        if ref:
            refs[var["name"]] = (ref["name"], ref["key"])
    return refs


def module_of(command: list[str]) -> str | None:
    """The module of a `python -m MODULE ...` command."""
    if len(command) >= 3 and command[0] == "python" and command[1] == "-m":
        return command[2]
    return None


def module_exists(module: str) -> bool:
    """`python -m module` finds something to run in this repository (no import needed)."""
    path = REPO.joinpath(*module.split("."))
    return path.with_suffix(".py").is_file() or (path / "__main__.py").is_file()


# --------------------------------------------------------------------------- settings


def settings_env_fields(cls: type[BaseSettings]) -> dict[str, str]:
    """Env variable -> field name, as pydantic-settings reads them: the validation_alias
    (or each of its choices) when there is one, else env_prefix + field name. A renamed
    setting counts under its new name only: the files must not use the old one."""
    prefix = str(cls.model_config.get("env_prefix") or "")
    names: dict[str, str] = {}
    for field_name, field in cls.model_fields.items():
        alias = field.validation_alias
        if isinstance(alias, str):
            names[alias.upper()] = field_name
        elif isinstance(alias, Renamed):
            names[alias.new.upper()] = field_name
        elif isinstance(alias, AliasChoices):
            names.update({c.upper(): field_name for c in alias.choices if isinstance(c, str)})
        else:
            names[f"{prefix}{field_name}".upper()] = field_name
    return names


def process_env_fields(process: str) -> dict[str, tuple[type[BaseSettings], str]]:
    return {
        env: (cls, field)
        for cls in PROCESS_SETTINGS[process]
        for env, field in settings_env_fields(cls).items()
    }


def known_env_names() -> set[str]:
    return {env for process in PROCESS_SETTINGS for env in process_env_fields(process)}


def secret_env_names(process: str) -> set[str]:
    """The settings of a process that hold credentials."""
    return {
        env
        for env, (_, field) in process_env_fields(process).items()
        if SECRET_FIELD.search(field) or field in CREDENTIAL_URL_FIELDS
    }


def unknown_env_problems(where: str, names: Iterable[str], known: set[str]) -> list[str]:
    return [
        f"{where}: {name} is not a setting of any ClipMix process"
        for name in sorted(names)
        if name.startswith("CLIPMIX_") and name.upper() not in known
    ]


def missing_secret_problems(process: str, container: dict[str, Any], secret: str) -> list[str]:
    refs = secret_key_refs(container)
    problems = []
    for name in sorted(secret_env_names(process)):
        if name not in refs:
            problems.append(f"{process}: {name} is not taken from a Secret (secretKeyRef)")
        elif refs[name][0] != secret:
            problems.append(f"{process}: {name} comes from {refs[name][0]}, not {secret}")
    return problems


def load_settings(cls: type[BaseSettings], env: Mapping[str, str]) -> Any:
    """The settings a process would read from exactly this environment (nothing else)."""
    with mock.patch.dict(os.environ, env, clear=True):
        return cls()


def production_refusals(process: str, env: Mapping[str, str]) -> list[str]:
    """What the process would refuse at start with this environment: the checks of
    runtime/config.py (every credential), runtime/service.py build_app (internal token) and
    jobs/app.py create_app."""
    try:
        settings = load_settings(PROCESS_SETTINGS[process][0], env)
    except (InsecureSettings, InvalidSetting) as exc:
        return [f"{process}: {exc}"]
    if not isinstance(settings, ServiceSettings):
        return []
    if settings.env != "production":
        return [f"{process}: CLIPMIX_ENV is {settings.env!r}, not production"]
    problems = []
    if settings.internal_token == ServiceSettings.model_fields["internal_token"].default:
        problems.append(f"{process}: CLIPMIX_INTERNAL_TOKEN is the development default")
    if isinstance(settings, JobsSettings):
        try:
            _refuse_dev_secrets(settings)
        except RuntimeError as exc:
            problems.append(f"{process}: {exc}")
    return problems


_INTERPOLATION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])([^}]*))?\}")


def interpolate(value: str, env: Mapping[str, str]) -> str:
    """Compose variable interpolation (${VAR}, ${VAR:-default}, ${VAR-default},
    ${VAR:?error}, ${VAR:+other}, $$), enough for these files."""

    def one(match: re.Match[str]) -> str:
        name, op, arg = match.group(1), match.group(2), match.group(3) or ""
        given = env.get(name)
        if op == ":-":
            return given or arg
        if op == "-":
            return arg if given is None else given
        if op in {":?", "?"}:
            if not given:
                raise ValueError(f"{name}: {arg}")
            return given
        if op == ":+":
            return arg if given else ""
        if op == "+":
            return arg if given is not None else ""
        return given or ""

    return _INTERPOLATION.sub(one, value.replace("$$", "\0")).replace("\0", "$")


def compose_variables(value: str) -> set[str]:
    return {match.group(1) for match in _INTERPOLATION.finditer(value)}


def compose_env(
    compose: dict[str, Any], service: str, outside: Mapping[str, str]
) -> dict[str, str]:
    """A compose service's environment as the container gets it, given the host's variables."""
    env = compose["services"][service].get("environment") or {}
    return {key: interpolate(str(value), outside) for key, value in env.items()}


def static_targets(config: dict[str, Any]) -> set[str]:
    return {
        target
        for job in config.get("scrape_configs") or []
        for static in job.get("static_configs") or []
        for target in static.get("targets") or []
    }


def resolve_recorded(expr: str, recorded: dict[str, str]) -> str:
    """Inline recording rules so an alert's windows and selectors can be inspected."""
    for _ in range(5):
        for name, body in recorded.items():
            expr = re.sub(rf"(?<![\w:]){re.escape(name)}(?![\w:])", f"({body})", expr)
    return expr


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load_yaml(DEPLOY / "compose.yaml")


@pytest.fixture(scope="module")
def secret_template() -> dict[str, str]:
    secrets = [
        doc
        for path in K8S.glob("*.example.yaml")
        for doc in load_yaml_docs(path)
        if doc.get("kind") == "Secret"
    ]
    assert len(secrets) == 1
    assert secrets[0]["metadata"]["name"] == "clipmix-secrets"
    return dict(secrets[0]["stringData"])


@pytest.fixture(scope="module")
def runbook_anchors() -> dict[str, set[str]]:
    return {doc: markdown_anchors((REPO / doc).read_text(encoding="utf-8")) for doc in RUNBOOK_DOCS}


@pytest.fixture(scope="module")
def alerts_doc() -> dict[str, Any]:
    return load_yaml(PROMETHEUS / "alerts.yml")


@pytest.fixture(scope="module")
def dashboards() -> dict[str, dict[str, Any]]:
    paths = sorted((GRAFANA / "dashboards").glob("*.json"))
    assert paths, "no Grafana dashboard JSON under deploy/grafana/dashboards"
    return {p.name: json.loads(p.read_text(encoding="utf-8")) for p in paths}


# --------------------------------------------------------------------------- all YAML


def test_deploy_tree_has_the_expected_yaml_files() -> None:
    names = {p.relative_to(DEPLOY).as_posix() for p in yaml_files(DEPLOY)}
    for required in (
        "compose.yaml",
        "k8s/kustomization.yaml",
        "prometheus/prometheus.yml",
        "prometheus/prometheus.compose.yml",
        "prometheus/alerts.yml",
    ):
        assert required in names


@pytest.mark.parametrize("path", yaml_files(DEPLOY), ids=lambda p: p.relative_to(DEPLOY).as_posix())
def test_every_yaml_file_under_deploy_parses(path: Path) -> None:
    docs = load_yaml_docs(path)
    assert docs, f"{path} has no YAML document"
    for doc in docs:
        assert isinstance(doc, dict), f"{path}: every document should be a mapping"


# --------------------------------------------------------------------------- compose


def test_compose_has_infrastructure_migrate_the_services_and_the_simulator(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    expected = {"postgres", "rabbitmq", "migrate", "prometheus", "grafana", "simulator", *SERVICES}
    assert expected <= set(services)
    assert services["postgres"]["image"] == "postgres:15"
    assert services["rabbitmq"]["image"] == "rabbitmq:3.13-management"
    for infra in ("postgres", "rabbitmq"):
        assert services[infra]["healthcheck"]["test"], f"{infra} needs a healthcheck"
        assert services[infra]["volumes"], f"{infra} needs a data volume"
    assert services["migrate"]["command"] == ["python", "-m", "services.runtime.migrate"]
    assert services["migrate"].get("restart") == "no"

    simulator = services["simulator"]
    assert simulator["command"] == ["python", "-m", "services.simulator"]
    assert simulator["image"] == services["migrate"]["image"], "one image for all"
    check = " ".join(simulator["healthcheck"]["test"])
    assert f"127.0.0.1:{SIMULATOR_PORT}/readyz" in check
    settings = load_settings(SimulatorSettings, compose_env(compose, "simulator", {}))
    assert (settings.host, settings.port) == (CONTAINER_HOST, SIMULATOR_PORT)


def test_the_ports_here_are_the_settings_defaults() -> None:
    for name, port in SERVICES.items():
        assert PROCESS_SETTINGS[name][0].model_fields["port"].default == port, name
    assert SimulatorSettings.model_fields["port"].default == SIMULATOR_PORT


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_compose_service_is_wired_and_health_checked(compose: dict[str, Any], name: str) -> None:
    service = compose["services"][name]
    port = SERVICES[name]
    assert service["command"] == ["python", "-m", f"services.{name}"]

    check = " ".join(service["healthcheck"]["test"])
    probed = OPERATOR_PORTS[name]
    assert f"127.0.0.1:{probed}/readyz" in check, f"{name} healthcheck must probe its /readyz"

    depends = service["depends_on"]
    assert depends["migrate"]["condition"] == "service_completed_successfully"
    assert depends["postgres"]["condition"] == "service_healthy"
    assert depends["rabbitmq"]["condition"] == "service_healthy"

    env = compose_env(compose, name, {})
    assert env["CLIPMIX_HOST"] == CONTAINER_HOST
    assert "@postgres:5432/clipmix" in env["CLIPMIX_DATABASE_URL"]
    assert "@rabbitmq:5672/" in env["CLIPMIX_AMQP_URL"]
    assert service["image"] == compose["services"]["migrate"]["image"], "one image for all"
    settings = load_settings(PROCESS_SETTINGS[name][0], env)
    assert (settings.host, settings.port) == (CONTAINER_HOST, port)


@pytest.mark.parametrize("name", [*sorted(SERVICES), "migrate"])
def test_compose_services_get_the_service_urls_and_the_internal_token(
    compose: dict[str, Any], name: str
) -> None:
    env = compose["services"][name]["environment"]
    for target, port in {**SERVICES, "simulator": SIMULATOR_PORT}.items():
        assert env[f"CLIPMIX_{target.upper()}_URL"] == f"http://{target}:{port}", target
        assert target in compose["services"]
    assert compose_variables(env["CLIPMIX_INTERNAL_TOKEN"]) == {"CLIPMIX_INTERNAL_TOKEN"}
    settings = load_settings(ServiceSettings, compose_env(compose, name, {}))
    assert settings.simulator_url == f"http://simulator:{SIMULATOR_PORT}"


def test_compose_points_jobs_at_the_simulator_with_shared_secrets(compose: dict[str, Any]) -> None:
    jobs = load_settings(JobsSettings, compose_env(compose, "jobs", {}))
    simulator = f"http://simulator:{SIMULATOR_PORT}"
    assert jobs.replicate_url == jobs.dubbing_url == simulator
    assert jobs.callback_base == jobs.jobs_url.rstrip("/")
    gateway_env = compose_env(compose, "gateway", {})
    assert jobs.artifact_base == gateway_env["CLIPMIX_PUBLIC_BASE_URL"].rstrip("/")

    # The simulator accepts the jobs service's key and signs with its secret, by default
    # and when the operator sets them.
    for outside in (
        {},
        {"CLIPMIX_JOBS_REPLICATE_TOKEN": "k1", "CLIPMIX_JOBS_DUBBING_KEY": "k1"},
        {"CLIPMIX_JOBS_PROVIDER_WEBHOOK_SECRET": "whsec_b3RoZXI="},
    ):
        jobs = load_settings(JobsSettings, compose_env(compose, "jobs", outside))
        sim = load_settings(SimulatorSettings, compose_env(compose, "simulator", outside))
        assert sim.api_key == jobs.replicate_token == jobs.dubbing_key
        assert sim.webhook_secret == jobs.provider_webhook_secret

    public = {"CLIPMIX_PUBLIC_BASE_URL": "https://api.example.test"}
    assert load_settings(JobsSettings, compose_env(compose, "jobs", public)).artifact_base == (
        "https://api.example.test"
    )


def test_compose_jobs_keeps_artifacts_in_a_named_volume(compose: dict[str, Any]) -> None:
    services = compose["services"]
    jobs = services["jobs"]
    directory = load_settings(JobsSettings, compose_env(compose, "jobs", {})).artifact_dir
    assert directory.startswith("/"), "an absolute path inside the container"
    mounts = dict(reversed(v.split(":")[:2]) for v in jobs["volumes"])
    volume = mounts[directory]
    assert volume in (compose.get("volumes") or {}), f"{volume} should be a named volume"

    # A fresh named volume belongs to root; the one-shot init hands it to the service user.
    init = services["jobs-artifacts-init"]
    assert f"{volume}:{directory}" in init["volumes"]
    assert init["command"][0] == "chown" and init["command"][-1] == directory
    assert init["command"][1].split(":")[0] == "10001"
    assert init.get("restart") == "no"
    assert jobs["depends_on"]["jobs-artifacts-init"]["condition"] == (
        "service_completed_successfully"
    )


def test_compose_env_names_are_settings_of_the_process(compose: dict[str, Any]) -> None:
    known = known_env_names()
    anchor = compose["x-clipmix-env"]
    problems = unknown_env_problems("x-clipmix-env", anchor, known)
    for name, service in compose["services"].items():
        env = service.get("environment") or {}
        if name in PROCESS_SETTINGS:
            own = process_env_fields(name)
            problems += [
                f"{name}: {key} is not a setting of {name}"
                for key in sorted(set(env) - set(anchor))
                if key.startswith("CLIPMIX_") and key not in own
            ]
        else:
            problems += unknown_env_problems(name, env, known)
    text = (DEPLOY / "compose.yaml").read_text(encoding="utf-8")
    used = {v for v in compose_variables(text) if v.startswith("CLIPMIX_")}
    problems += unknown_env_problems("${...}", used - COMPOSE_ONLY_VARIABLES, known)
    assert problems == []


def test_compose_secret_defaults_are_only_the_refused_development_values(
    compose: dict[str, Any],
) -> None:
    """A secret in compose comes from the host's environment; its fallback, if any, is the
    development value of the setting itself, which production refuses."""
    checked = 0
    for name, service in compose["services"].items():
        if name not in PROCESS_SETTINGS:
            continue
        fields = process_env_fields(name)
        for key, raw in (service.get("environment") or {}).items():
            if key not in secret_env_names(name) or key == "CLIPMIX_DATABASE_URL":
                continue
            if key == "CLIPMIX_AMQP_URL":
                continue  # the broker password is compose's own (RABBITMQ_PASSWORD)
            assert compose_variables(str(raw)), f"{name}: {key} is written into compose.yaml"
            cls, field = fields[key]
            default = cls.model_fields[field].default
            fallback = interpolate(str(raw), {})
            if fallback == "" and default is None:  # ${VAR:-}: read as unset (jobs/config.py)
                assert load_settings(cls, {key: ""}).model_dump()[field] is None, key
            else:
                assert fallback == default, f"{name}: {key} defaults to a new value"
            checked += 1
    assert checked >= 8


def test_a_production_compose_run_must_set_every_secret(compose: dict[str, Any]) -> None:
    production = {"CLIPMIX_ENV": "production"}
    for name in SERVICES:
        refused = production_refusals(name, compose_env(compose, name, production))
        assert f"{name}: CLIPMIX_INTERNAL_TOKEN must be set in production" in refused[0]
    refused = production_refusals("jobs", compose_env(compose, "jobs", production))
    assert any("must be set in production" in problem for problem in refused), refused

    given = dict(production)
    for name in SERVICES:
        env = compose["services"][name]["environment"]
        for key in secret_env_names(name) & set(env):
            given.update({v: f"set-by-operator-{v}" for v in compose_variables(str(env[key]))})
    for name in SERVICES:
        assert production_refusals(name, compose_env(compose, name, given)) == []


def test_compose_allows_private_webhook_targets_only_when_asked(compose: dict[str, Any]) -> None:
    def allowed(outside: dict[str, str]) -> bool:
        env = compose_env(compose, "webhooks", outside)
        return bool(load_settings(WebhooksSettings, env).webhook_allow_private_targets)

    assert allowed({}) is False
    assert allowed({"CLIPMIX_WEBHOOKS_ALLOW_PRIVATE_TARGETS": "true"}) is True
    assert "CLIPMIX_WEBHOOKS_ALLOW_PRIVATE_TARGETS" not in compose["x-clipmix-env"]


def test_compose_publishes_only_the_gateway_api_port(compose: dict[str, Any]) -> None:
    assert "8080:8080" in compose["services"]["gateway"]["ports"]
    for name in set(SERVICES) - {"gateway"}:
        assert not compose["services"][name].get("ports"), f"{name} should not be published"
    for port in compose["services"]["simulator"].get("ports") or []:
        assert port.startswith("127.0.0.1:"), "the simulator's /__admin is unauthenticated"


def test_compose_bind_mounts_exist(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        for volume in service.get("volumes") or []:
            source = volume.split(":", 1)[0]
            if source.startswith("."):
                assert (DEPLOY / source).exists(), f"{name} mounts missing {source}"
    prometheus_cmd = " ".join(compose["services"]["prometheus"]["command"])
    assert "/etc/prometheus/prometheus.compose.yml" in prometheus_cmd


def test_every_python_command_in_the_deploy_files_runs_an_existing_module(
    compose: dict[str, Any],
) -> None:
    commands = {
        f"compose {name}": service["command"]
        for name, service in compose["services"].items()
        if isinstance(service.get("command"), list)
    }
    for objects in (k8s_objects(), overlay_objects()):
        for pod_name, pod in pod_templates(objects).items():
            for container in pod["containers"]:
                commands[f"k8s {pod_name}"] = container.get("command") or []
    modules = {where: module_of(command) for where, command in commands.items()}
    assert sum(1 for m in modules.values() if m) >= 2 * len(SERVICES) + 2
    missing = [f"{where}: {m}" for where, m in modules.items() if m and not module_exists(m)]
    assert missing == []


# --------------------------------------------------------------------------- Kubernetes


def k8s_process_env(name: str, secrets: Mapping[str, str]) -> dict[str, str]:
    """The environment of a base Deployment's container: ConfigMap, then its own env with
    each secretKeyRef resolved from ``secrets``."""
    config = by_kind("ConfigMap")["clipmix-config"]["data"]
    (container,) = by_kind("Deployment")[f"clipmix-{name}"]["spec"]["template"]["spec"][
        "containers"
    ]
    env = {key: str(value) for key, value in config.items()}
    for var in container.get("env") or []:
        if "value" in var:
            env[var["name"]] = str(var["value"])
    for var, (_, key) in secret_key_refs(container).items():
        env[var] = secrets[key]
    return env


def test_kustomization_lists_every_manifest_except_the_secret_template() -> None:
    kustomization = load_yaml(K8S / "kustomization.yaml")
    listed = set(kustomization["resources"])
    for name in listed:
        assert (K8S / name).is_file(), f"kustomization lists missing {name}"
    on_disk = {p.name for p in yaml_files(K8S)} - {"kustomization.yaml"}
    templates = {n for n in on_disk if ".example." in n}
    assert templates, "a Secret template is expected"
    assert listed == on_disk - templates
    assert not listed & templates, "templates with placeholders must not be applied"


def test_secret_template_lists_every_secret_the_manifests_use(
    secret_template: dict[str, str],
) -> None:
    referenced: set[str] = set()
    for objects in (k8s_objects(), overlay_objects()):
        for pod in pod_templates(objects).values():
            for container in pod["containers"]:
                for secret, key in secret_key_refs(container).values():
                    assert secret == "clipmix-secrets"
                    referenced.add(key)
    assert set(secret_template) == referenced
    for key, value in secret_template.items():
        assert "REPLACE_ME" in value, f"{key} must be a clearly marked placeholder"
    comment = (K8S / "secret.example.yaml").read_text(encoding="utf-8")
    for key in secret_template:
        assert f"--from-literal={key}=" in comment, f"the create command lacks {key}"


def test_configmap_holds_only_non_secret_settings(secret_template: dict[str, str]) -> None:
    every_secret = {env for process in PROCESS_SETTINGS for env in secret_env_names(process)}
    for objects in (k8s_objects(), overlay_objects()):
        config = by_kind("ConfigMap", objects)["clipmix-config"]["data"]
        assert all(key.startswith("CLIPMIX_") for key in config)
        assert not set(config) & (every_secret | set(secret_template))
    assert by_kind("ConfigMap")["clipmix-config"]["data"]["CLIPMIX_HOST"] == CONTAINER_HOST


def test_k8s_env_names_are_settings() -> None:
    known = known_env_names()
    problems: list[str] = []
    for objects in (k8s_objects(), overlay_objects()):
        for config in by_kind("ConfigMap", objects).values():
            problems += unknown_env_problems(config["_file"], config["data"], known)
        for pod_name, pod in pod_templates(objects).items():
            for container in pod["containers"]:
                own = process_env_fields(container["name"])
                problems += [
                    f"{pod_name}: {var['name']} is not a setting of {container['name']}"
                    for var in container.get("env") or []
                    if var["name"] not in own
                ]
    assert problems == []


def test_migration_job_runs_the_migrator() -> None:
    job = by_kind("Job")["clipmix-migrate"]
    pod = job["spec"]["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    (container,) = pod["containers"]
    assert container["command"] == ["python", "-m", "services.runtime.migrate"]
    assert container["resources"]["limits"]
    assert secret_key_refs(container)["CLIPMIX_DATABASE_URL"] == (
        "clipmix-secrets",
        "CLIPMIX_DATABASE_URL",
    )


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_k8s_deployment_has_probes_limits_and_scrape_annotations(name: str) -> None:
    deployment = by_kind("Deployment")[f"clipmix-{name}"]
    port = SERVICES[name]
    spec = deployment["spec"]
    template = spec["template"]
    pod = template["spec"]
    assert pod["terminationGracePeriodSeconds"] == 30
    if name in {"gateway", "jobs"}:
        assert spec["replicas"] >= 2

    selector = spec["selector"]["matchLabels"]
    assert selector.items() <= template["metadata"]["labels"].items()

    annotations = template["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == str(OPERATOR_PORTS[name])
    assert annotations["prometheus.io/path"] == "/metrics"

    (container,) = pod["containers"]
    assert container["name"] == name
    assert container["command"] == ["python", "-m", f"services.{name}"]
    assert {"name": "http", "containerPort": port, "protocol": "TCP"} in container["ports"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    if OPERATOR_PORTS[name] != port:
        admin = {"name": "admin", "containerPort": OPERATOR_PORTS[name], "protocol": "TCP"}
        assert admin in container["ports"]
        assert container["readinessProbe"]["httpGet"]["port"] == "admin"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    resources = container["resources"]
    for kind in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(resources[kind]), f"{name} {kind} need cpu and memory"
    env_from = {next(iter(src)): next(iter(src.values()))["name"] for src in container["envFrom"]}
    assert env_from == {"configMapRef": "clipmix-config"}, "secrets come by secretKeyRef"
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True

    service = by_kind("Service")[f"clipmix-{name}"]
    assert service["spec"]["selector"] == selector
    assert service["spec"]["ports"][0]["port"] == port


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_k8s_gives_each_service_its_secrets_by_secret_key_ref(name: str) -> None:
    (container,) = by_kind("Deployment")[f"clipmix-{name}"]["spec"]["template"]["spec"][
        "containers"
    ]
    assert missing_secret_problems(name, container, "clipmix-secrets") == []


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_k8s_settings_pass_the_production_checks(
    name: str, secret_template: dict[str, str]
) -> None:
    env = k8s_process_env(name, secret_template)
    assert production_refusals(name, env) == []
    # ... and each secret matters: without it the service falls back to a default that
    # production refuses (a new secret setting needs such a check in the service too).
    urls = {f"CLIPMIX_{field.upper()}" for field in CREDENTIAL_URL_FIELDS}
    for key in secret_env_names(name) - urls:
        without = {k: v for k, v in env.items() if k != key}
        assert production_refusals(name, without), f"{name} starts without {key}"


def test_k8s_service_urls_are_cluster_dns_names_and_jobs_uses_real_providers(
    secret_template: dict[str, str],
) -> None:
    config = by_kind("ConfigMap")["clipmix-config"]["data"]
    services = by_kind("Service")
    for name, port in SERVICES.items():
        url = config[f"CLIPMIX_{name.upper()}_URL"]
        assert url == f"http://clipmix-{name}.clipmix.svc.cluster.local:{port}"
        assert port in [p["port"] for p in services[f"clipmix-{name}"]["spec"]["ports"]]
    jobs = load_settings(JobsSettings, k8s_process_env("jobs", secret_template))
    for provider in (jobs.replicate_url, jobs.dubbing_url):
        assert provider and provider.startswith("https://"), "production calls real providers"
    assert jobs.artifact_base == config["CLIPMIX_PUBLIC_BASE_URL"].rstrip("/")
    assert ".svc.cluster.local" not in jobs.callback_base, "providers cannot reach it"


def test_the_base_has_no_simulator() -> None:
    for obj in k8s_objects():
        assert "simulator" not in (obj.get("metadata") or {}).get("name", ""), obj["_file"]
    for key, value in by_kind("ConfigMap")["clipmix-config"]["data"].items():
        assert "simulator" not in str(value), f"{key} points at the simulator"


def test_k8s_jobs_keeps_artifacts_in_an_object_store_every_replica_shares(
    secret_template: dict[str, str],
) -> None:
    """Two jobs replicas on different nodes: results go to the S3-compatible store, not a
    volume one node holds (ADR-073), with the store's keys from the Secret."""
    settings = load_settings(JobsSettings, k8s_process_env("jobs", secret_template))
    assert settings.artifact_store == "s3"
    assert settings.artifact_s3_bucket and settings.artifact_s3_access_key
    assert settings.artifact_s3_secret_key is not None
    deployment = by_kind("Deployment")["clipmix-jobs"]
    assert deployment["spec"]["replicas"] > 1
    pod = deployment["spec"]["template"]["spec"]
    assert all("persistentVolumeClaim" not in v for v in pod["volumes"])
    assert "PersistentVolumeClaim" not in {obj["kind"] for obj in k8s_objects()}


def test_k8s_services_reach_every_rabbitmq_node(secret_template: dict[str, str]) -> None:
    """The broker is a cluster: each service is given every node, and reconnects to one that
    is up when its own goes away."""
    for name in SERVICES:
        settings = load_settings(PROCESS_SETTINGS[name][0], k8s_process_env(name, secret_template))
        assert len(settings.amqp_urls) == 3, name


def test_k8s_pods_get_no_service_link_variables() -> None:
    # Service clipmix-<name> would inject CLIPMIX_<NAME>_PORT=tcp://..., the name of a setting.
    for objects in (k8s_objects(), overlay_objects()):
        for name, pod in pod_templates(objects).items():
            assert pod.get("enableServiceLinks") is False, name


def test_simulator_overlay_adds_the_simulator_and_points_jobs_at_it(
    secret_template: dict[str, str],
) -> None:
    kustomization = load_yaml(SIMULATOR_OVERLAY / "kustomization.yaml")
    assert "../../k8s" in kustomization["resources"]
    for path in [*kustomization["resources"], *(p["path"] for p in kustomization["patches"])]:
        assert (SIMULATOR_OVERLAY / path).exists(), path

    objects = overlay_objects()
    deployment = by_kind("Deployment", objects)["clipmix-simulator"]
    template = deployment["spec"]["template"]
    (container,) = template["spec"]["containers"]
    assert container["name"] == "simulator"
    assert container["command"] == ["python", "-m", "services.simulator"]
    assert {"name": "http", "containerPort": SIMULATOR_PORT, "protocol": "TCP"} in container[
        "ports"
    ]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    annotations = template["metadata"].get("annotations") or {}
    assert annotations.get("prometheus.io/scrape") != "true", "it has no /metrics"

    service = by_kind("Service", objects)["clipmix-simulator"]
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    assert service["spec"]["ports"][0]["port"] == SIMULATOR_PORT

    base = by_kind("ConfigMap")["clipmix-config"]["data"]
    patch = by_kind("ConfigMap", objects)["clipmix-config"]["data"]
    url = f"http://clipmix-simulator.clipmix.svc.cluster.local:{SIMULATOR_PORT}"
    env = {**base, **patch, **secret_template}
    jobs = load_settings(JobsSettings, env)
    assert jobs.replicate_url == jobs.dubbing_url == jobs.simulator_url == url
    assert jobs.callback_base == base["CLIPMIX_JOBS_URL"]

    # The simulator checks the key and signs with the secret the jobs service uses.
    assert missing_secret_problems("simulator", container, "clipmix-secrets") == []
    refs = {var: key for var, (_, key) in secret_key_refs(container).items()}
    assert refs == {
        "CLIPMIX_SIMULATOR_API_KEY": "CLIPMIX_JOBS_REPLICATE_TOKEN",
        "CLIPMIX_SIMULATOR_WEBHOOK_SECRET": "CLIPMIX_JOBS_PROVIDER_WEBHOOK_SECRET",
        # Its checkout: billing's key and signing secret.
        "CLIPMIX_SIMULATOR_CHECKOUT_SECRET_KEY": "CLIPMIX_BILLING_PAYMENTS_SECRET_KEY",
        "CLIPMIX_SIMULATOR_CHECKOUT_WEBHOOK_SECRET": "CLIPMIX_BILLING_PAYMENTS_WEBHOOK_SECRET",
    }
    simulator = load_settings(SimulatorSettings, {**base, **patch})
    assert (simulator.host, simulator.port) == (CONTAINER_HOST, SIMULATOR_PORT)


def test_no_deploy_file_allows_private_webhook_targets_in_kubernetes() -> None:
    for objects in (k8s_objects(), overlay_objects()):
        for config in by_kind("ConfigMap", objects).values():
            assert "CLIPMIX_WEBHOOKS_ALLOW_PRIVATE_TARGETS" not in config["data"]


KUBECTL = shutil.which("kubectl")


@pytest.mark.skipif(KUBECTL is None, reason="kubectl not installed")
def test_kustomize_renders_the_base_and_the_simulator_overlay() -> None:
    assert KUBECTL is not None

    def render(path: Path) -> list[dict[str, Any]]:
        done = subprocess.run(
            [KUBECTL, "kustomize", str(path)], capture_output=True, text=True, timeout=30
        )
        assert done.returncode == 0, done.stderr
        return [d for d in yaml.load_all(done.stdout, Loader=_LOADER) if d]

    base = render(K8S)
    overlay = render(SIMULATOR_OVERLAY)
    names = {(d["kind"], d["metadata"]["name"]) for d in overlay}
    assert {(d["kind"], d["metadata"]["name"]) for d in base} | {
        ("Deployment", "clipmix-simulator"),
        ("Service", "clipmix-simulator"),
    } == names
    config = by_kind("ConfigMap", overlay)["clipmix-config"]["data"]
    assert "simulator" in config["CLIPMIX_JOBS_REPLICATE_URL"]
    assert (
        config["CLIPMIX_PUBLIC_BASE_URL"]
        == by_kind("ConfigMap", base)["clipmix-config"]["data"]["CLIPMIX_PUBLIC_BASE_URL"]
    ), "the patch merges into the base ConfigMap"


def test_gateway_has_a_pod_disruption_budget() -> None:
    pdb = by_kind("PodDisruptionBudget")["clipmix-gateway"]
    deployment = by_kind("Deployment")["clipmix-gateway"]
    assert pdb["spec"]["selector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]
    assert pdb["spec"]["minAvailable"] >= 1
    assert pdb["spec"]["minAvailable"] < deployment["spec"]["replicas"]


def test_every_k8s_object_lives_in_the_clipmix_namespace() -> None:
    for obj in [*k8s_objects(), *overlay_objects()]:
        if obj["kind"] in {"Namespace", "Kustomization"}:
            continue
        assert obj["metadata"].get("namespace") == "clipmix", f"{obj['_file']}: {obj['kind']}"


# --------------------------------------------------------------------------- Prometheus


def test_local_prometheus_scrapes_all_five_ports() -> None:
    config = load_yaml(PROMETHEUS / "prometheus.yml")
    expected = {f"127.0.0.1:{port}" for port in SERVICES.values()}
    assert expected <= static_targets(config)
    assert "alerts.yml" in config["rule_files"]
    # The gateway's public port answers /metrics only to the internal token.
    (gateway,) = [j for j in config["scrape_configs"] if j["job_name"] == "clipmix-gateway"]
    default = ServiceSettings.model_fields["internal_token"].default
    assert gateway["authorization"]["credentials"] == default


def test_compose_prometheus_scrapes_the_compose_service_names() -> None:
    config = load_yaml(PROMETHEUS / "prometheus.compose.yml")
    expected = {f"{name}:{port}" for name, port in OPERATOR_PORTS.items()}
    assert expected <= static_targets(config)
    assert "alerts.yml" in config["rule_files"]


@pytest.mark.parametrize("name", ["prometheus.yml", "prometheus.compose.yml"])
def test_every_service_is_a_clipmix_job_and_the_simulator_is_not_scraped(name: str) -> None:
    # ClipMixServiceDown selects up{job=~"clipmix-.+"}: one job per service, named after it;
    # the simulator (no /metrics, a test double) must be no such job, nor any target.
    jobs = {job["job_name"]: job for job in load_yaml(PROMETHEUS / name)["scrape_configs"]}
    assert {j for j in jobs if j.startswith("clipmix-")} == {f"clipmix-{s}" for s in SERVICES}
    for job_name, job in jobs.items():
        for static in job.get("static_configs") or []:
            for target in static.get("targets") or []:
                host, _, port = target.rpartition(":")
                assert "simulator" not in host and port != str(SIMULATOR_PORT), job_name


def test_scrape_jobs_do_not_set_a_service_target_label() -> None:
    # A target label named `service` would rename the metrics' own label to exported_service.
    for name in ("prometheus.yml", "prometheus.compose.yml"):
        for job in load_yaml(PROMETHEUS / name)["scrape_configs"]:
            for static in job.get("static_configs") or []:
                assert "service" not in (static.get("labels") or {}), f"{name}: {job['job_name']}"


def test_alert_rules_are_complete(
    alerts_doc: dict[str, Any], runbook_anchors: dict[str, set[str]]
) -> None:
    assert alert_rule_problems(alerts_doc, runbook_anchors, ALLOWED_SERIES) == []


def test_required_alerts_exist_with_the_agreed_conditions(alerts_doc: dict[str, Any]) -> None:
    rules = [rule for group in alerts_doc["groups"] for rule in group["rules"]]
    recorded = {rule["record"]: rule["expr"] for rule in rules if "record" in rule}
    alerts = {rule["alert"]: rule for rule in rules if "alert" in rule}
    assert set(alerts) >= REQUIRED_ALERTS

    def expr(name: str) -> str:
        return re.sub(r"\s+", " ", resolve_recorded(alerts[name]["expr"], recorded))

    fast = expr("ClipMixApiErrorBudgetFastBurn")
    assert "14.4 * 0.001" in fast and "[1h]" in fast and "[5m]" in fast
    slow = expr("ClipMixApiErrorBudgetSlowBurn")
    assert "6 * 0.001" in slow and "[6h]" in slow and "[30m]" in slow
    for burn in (fast, slow):
        assert 'service="gateway"' in burn and 'status=~"5.."' in burn
        assert "clipmix_http_requests_total" in burn

    outbox = alerts["ClipMixOutboxStalled"]
    assert "clipmix_outbox_oldest_age_seconds" in outbox["expr"] and "> 60" in outbox["expr"]
    assert outbox["for"] == "5m"

    dead = expr("ClipMixMessagesDeadLettered")
    assert "increase(clipmix_messages_consumed_total" in dead
    assert 'outcome="dead_lettered"' in dead and "[10m]" in dead and "> 0" in dead

    for name, factor, windows in (
        ("ClipMixJobErrorBudgetFastBurn", "14.4 * 0.01", ("[1h]", "[5m]")),
        ("ClipMixJobErrorBudgetSlowBurn", "6 * 0.01", ("[6h]", "[30m]")),
    ):
        job = expr(name)
        assert factor in job and all(w in job for w in windows)
        assert "clipmix_status_job_outcomes_total" in job and "sum by (kind)" in job

    assert "delta(clipmix_dead_letter_messages" in alerts["ClipMixDeadLetterQueueGrowing"]["expr"]
    lag = alerts["ClipMixConsumerLagging"]
    assert "clipmix_queue_messages_ready" in lag["expr"] and lag["for"] == "10m"

    down = alerts["ClipMixServiceDown"]
    assert down["expr"].startswith("up") and "== 0" in down["expr"]
    assert down["for"] == "2m"


def test_every_alert_has_its_own_runbook_section(
    alerts_doc: dict[str, Any], runbook_anchors: dict[str, set[str]]
) -> None:
    for group in alerts_doc["groups"]:
        for rule in group["rules"]:
            if "alert" in rule:
                path, _, anchor = rule["annotations"]["runbook_url"].partition("#")
                assert anchor == github_slug(rule["alert"])
                assert anchor in runbook_anchors[path], f"{path} lacks a {rule['alert']} section"


@pytest.mark.parametrize(
    "args",
    [
        ("check", "config", "prometheus.yml"),
        ("check", "config", "prometheus.compose.yml"),
        ("check", "rules", "alerts.yml"),
        ("test", "rules", "alerts.test.yml"),
    ],
    ids=" ".join,
)
def test_promtool_accepts_the_config_rules_and_rule_tests(args: tuple[str, ...]) -> None:
    promtool = tools.require("promtool")  # installed by make test; missing under CI: a failure
    done = subprocess.run(
        [promtool, *args], cwd=PROMETHEUS, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr


# --------------------------------------------------------------------------- Grafana


def test_dashboards_query_only_known_metrics(dashboards: dict[str, dict[str, Any]]) -> None:
    for name, dashboard in dashboards.items():
        assert dashboard_problems(dashboard, ALLOWED_SERIES) == [], name


def test_dashboard_covers_the_agreed_views(dashboards: dict[str, dict[str, Any]]) -> None:
    exprs = " ".join(
        target["expr"]
        for dashboard in dashboards.values()
        for panel in iter_panels(dashboard["panels"])
        for target in panel.get("targets") or []
    )
    for needle in (
        "rate(clipmix_http_requests_total",
        'status=~"5.."',
        "histogram_quantile(0.5,",
        "histogram_quantile(0.99,",
        "clipmix_http_request_duration_seconds_bucket",
        "clipmix_outbox_backlog",
        "clipmix_outbox_oldest_age_seconds",
        "clipmix_messages_consumed_total",
        'outcome="dead_lettered"',
        "sum by (kind, status) (rate(clipmix_jobs_transitions_total",
        "clipmix_status_component_severity",
        'clipmix_status_job_outcomes_total{outcome="error"}',
        "clipmix_job_run_duration_seconds_bucket",
        "clipmix_queue_messages_ready",
        "clipmix_dead_letter_messages",
        "clipmix_messages_redelivered_total",
        "sum by (outcome) (rate(clipmix_webhook_attempts_total",
        "clipmix_billing_reservations_total",
        "clipmix_billing_settlements_total",
    ):
        assert needle in exprs, f"dashboard lacks a query with {needle!r}"


def test_grafana_provisioning_matches_dashboard_and_compose(
    dashboards: dict[str, dict[str, Any]], compose: dict[str, Any]
) -> None:
    datasources = load_yaml(GRAFANA / "provisioning" / "datasources" / "prometheus.yml")
    (datasource,) = datasources["datasources"]
    assert datasource["type"] == "prometheus"
    assert datasource["url"] == "http://prometheus:9090"
    for dashboard in dashboards.values():
        for panel in iter_panels(dashboard["panels"]):
            if panel.get("type") != "row":
                assert panel["datasource"]["uid"] == datasource["uid"]

    provider = load_yaml(GRAFANA / "provisioning" / "dashboards" / "clipmix.yml")
    path = provider["providers"][0]["options"]["path"]
    mounts = compose["services"]["grafana"]["volumes"]
    assert f"./grafana/dashboards:{path}:ro" in mounts


# --------------------------------------------------------------------------- Dockerfile


def test_dockerfile_is_slim_non_root_and_runs_the_gateway() -> None:
    text = (REPO / "Dockerfile").read_text(encoding="utf-8")
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.11-slim$", text, re.M)
    assert "pip install" in text
    users = re.findall(r"^USER\s+(\S+)", text, re.M)
    assert users, "the image must switch to a non-root user"
    assert users[-1].split(":")[0] not in {"root", "0"}
    assert re.search(r'^CMD \["python", "-m", "services\.gateway"\]$', text, re.M)
    ignore = (REPO / ".dockerignore").read_text(encoding="utf-8").split()
    assert {".git", ".venv", ".env"} <= set(ignore)


# --------------------------------------------------------------------------- the checkers fail


def test_runbook_anchor_check_rejects_a_missing_section() -> None:
    doc = {
        "groups": [
            {
                "name": "g",
                "rules": [
                    {
                        "alert": "Broken",
                        "expr": "up == 0",
                        "labels": {"severity": "critical"},
                        "annotations": {
                            "summary": "s",
                            "runbook_url": "docs/runbook.md#no-such-section",
                        },
                    }
                ],
            }
        ]
    }
    problems = alert_rule_problems(doc, {"clipmixservicedown"}, ALLOWED_SERIES)
    assert problems == ["Broken: runbook_url anchor #no-such-section is not a runbook heading"]


def test_alert_check_rejects_missing_fields_and_unknown_metrics() -> None:
    doc = {
        "groups": [
            {
                "name": "g",
                "rules": [
                    {"alert": "NoSeverity", "expr": "rate(made_up_metric_total[5m]) > 1"},
                    {"alert": "NoExpr", "labels": {"severity": "warning"}},
                ],
            }
        ]
    }
    problems = alert_rule_problems(doc, set(), ALLOWED_SERIES)
    assert any("unknown metrics ['made_up_metric_total']" in p for p in problems)
    assert any(p.startswith("NoSeverity: labels.severity") for p in problems)
    assert any(p.startswith("NoSeverity: annotations.summary") for p in problems)
    assert any(p.startswith("NoSeverity: runbook_url") for p in problems)
    assert "NoExpr: no expr" in problems


def test_dashboard_check_rejects_unknown_metrics() -> None:
    dashboard = {
        "panels": [
            {"type": "row", "title": "r", "panels": []},
            {
                "type": "timeseries",
                "title": "bad",
                "targets": [{"expr": "sum by (service) (rate(process_cpu_seconds_total[5m]))"}],
            },
            {"type": "stat", "title": "empty", "targets": []},
        ],
        "templating": {
            "list": [{"name": "v", "type": "query", "query": "label_values(made_up, service)"}]
        },
    }
    problems = dashboard_problems(dashboard, ALLOWED_SERIES)
    assert "panel 'bad' uses unknown metrics ['process_cpu_seconds_total']" in problems
    assert "panel 'empty' has no queries" in problems
    assert "variable 'v' uses unknown metrics ['made_up']" in problems


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ('up{job=~"clipmix-.+"} == 0', {"up"}),
        (
            "histogram_quantile(0.99, sum by (service, le) "
            '(rate(clipmix_http_request_duration_seconds_bucket{service=~"$service"}'
            "[$__rate_interval])))",
            {"clipmix_http_request_duration_seconds_bucket"},
        ),
        (
            "sum(increase(clipmix_messages_consumed_total[1h] offset 5m)) or vector(0)",
            {"clipmix_messages_consumed_total"},
        ),
        (
            "clipmix:gateway_http_5xx_ratio:rate1h > (14.4 * 1e-3)",
            {"clipmix:gateway_http_5xx_ratio:rate1h"},
        ),
        ("a / on (service) group_left (kind) b", {"a", "b"}),
    ],
)
def test_promql_metric_extraction(expr: str, expected: set[str]) -> None:
    assert promql_metric_names(expr) == expected


def test_settings_env_names_follow_prefixes_and_aliases() -> None:
    jobs = process_env_fields("jobs")
    assert jobs["CLIPMIX_JOBS_ARTIFACT_DIR"] == (JobsSettings, "artifact_dir")  # alias
    assert jobs["CLIPMIX_INTERNAL_TOKEN"] == (JobsSettings, "internal_token")  # prefix + name
    assert "CLIPMIX_ARTIFACT_DIR" not in jobs
    assert "CLIPMIX_TRAFFIC_FLUSH_SECONDS" in process_env_fields("gateway")
    assert "CLIPMIX_TRAFFIC_FLUSH_SECONDS" not in process_env_fields("billing")
    simulator = process_env_fields("simulator")
    assert {"CLIPMIX_SIMULATOR_API_KEY", "CLIPMIX_HOST", "CLIPMIX_SIMULATOR_PORT"} <= set(simulator)
    assert secret_env_names("jobs") == {
        "CLIPMIX_DATABASE_URL",
        "CLIPMIX_AMQP_URL",
        "CLIPMIX_INTERNAL_TOKEN",
        "CLIPMIX_JOBS_REPLICATE_TOKEN",
        "CLIPMIX_JOBS_DUBBING_KEY",
        "CLIPMIX_JOBS_PROVIDER_WEBHOOK_SECRET",
        "CLIPMIX_JOBS_ARTIFACT_SECRET",
        "CLIPMIX_JOBS_ARTIFACT_S3_ACCESS_KEY",
        "CLIPMIX_JOBS_ARTIFACT_S3_SECRET_KEY",
    }
    assert secret_env_names("simulator") == {
        "CLIPMIX_SIMULATOR_API_KEY",
        "CLIPMIX_SIMULATOR_WEBHOOK_SECRET",
        "CLIPMIX_SIMULATOR_CHECKOUT_SECRET_KEY",
        "CLIPMIX_SIMULATOR_CHECKOUT_WEBHOOK_SECRET",
    }


def test_env_name_check_rejects_a_setting_that_does_not_exist() -> None:
    names = ["CLIPMIX_HOST", "CLIPMIX_JOBS_ARTIFACTS_DIR", "POSTGRES_PASSWORD"]
    assert unknown_env_problems("x", names, known_env_names()) == [
        "x: CLIPMIX_JOBS_ARTIFACTS_DIR is not a setting of any ClipMix process"
    ]


def test_env_name_check_rejects_the_old_name_of_a_renamed_setting() -> None:
    """Old names are still read (for one release), but the deploy files use the new ones."""
    names = ["CLIPMIX_WEBHOOK_ALLOW_PRIVATE_TARGETS", "CLIPMIX_WEBHOOKS_ALLOW_PRIVATE_TARGETS"]
    assert unknown_env_problems("x", names, known_env_names()) == [
        "x: CLIPMIX_WEBHOOK_ALLOW_PRIVATE_TARGETS is not a setting of any ClipMix process"
    ]


def test_secret_check_rejects_secrets_from_the_configmap_or_another_secret() -> None:
    from_config = {"name": "jobs", "envFrom": [{"configMapRef": {"name": "clipmix-config"}}]}
    assert len(missing_secret_problems("jobs", from_config, "clipmix-secrets")) == 9
    other = {
        "name": "billing",
        "env": [
            {"name": n, "valueFrom": {"secretKeyRef": {"name": "elsewhere", "key": n}}}
            for n in secret_env_names("billing")
        ],
    }
    problems = missing_secret_problems("billing", other, "clipmix-secrets")
    assert "billing: CLIPMIX_INTERNAL_TOKEN comes from elsewhere, not clipmix-secrets" in problems


def test_production_check_rejects_development_secrets() -> None:
    refused = production_refusals("jobs", {"CLIPMIX_ENV": "production"})
    assert refused[0].startswith("jobs: CLIPMIX_INTERNAL_TOKEN must be set in production")
    token = {"CLIPMIX_ENV": "production", "CLIPMIX_INTERNAL_TOKEN": "t"}
    refused = production_refusals("jobs", token)
    assert refused[0].startswith("jobs: CLIPMIX_JOBS_REPLICATE_TOKEN must be set in production")
    # An empty credential is refused too (an empty internal token would open /internal/).
    empty = production_refusals("billing", {**token, "CLIPMIX_INTERNAL_TOKEN": ""})
    assert empty == ["billing: CLIPMIX_INTERNAL_TOKEN must not be empty in production"]
    # Billing also needs the payment provider's key and signing secret (card top-ups).
    assert production_refusals("billing", token) == [
        "billing: CLIPMIX_BILLING_PAYMENTS_SECRET_KEY must be set in production"
        " (not its development value)"
    ]
    payments = {
        "CLIPMIX_BILLING_PAYMENTS_SECRET_KEY": "k",
        "CLIPMIX_BILLING_PAYMENTS_WEBHOOK_SECRET": "w",
    }
    assert production_refusals("billing", {**token, **payments}) == []
    assert production_refusals("billing", {"CLIPMIX_INTERNAL_TOKEN": "t"}) == [
        "billing: CLIPMIX_ENV is 'development', not production"
    ]


@pytest.mark.parametrize(
    ("value", "env", "expected"),
    [
        ("${A:-x}", {}, "x"),
        ("${A:-x}", {"A": ""}, "x"),
        ("${A-x}", {"A": ""}, ""),
        ("${A:-x}", {"A": "y"}, "y"),
        ("${A}", {}, ""),
        ("${A:+on}", {"A": "1"}, "on"),
        ("a$${A}b${B:-c}", {"A": "no"}, "a${A}bc"),
    ],
)
def test_compose_interpolation(value: str, env: dict[str, str], expected: str) -> None:
    assert interpolate(value, env) == expected


def test_compose_interpolation_refuses_a_missing_required_variable() -> None:
    with pytest.raises(ValueError, match="A: set it"):
        interpolate("${A:?set it}", {})


def test_markdown_anchors_follow_github_rules() -> None:
    text = "# Title\n## Revoking a leaked API key\n```sh\n# not a heading\n```\n## Title\n"
    assert markdown_anchors(text) == {"title", "revoking-a-leaked-api-key", "title-1"}


@pytest.mark.parametrize("name", ["runbook.md", "decisions.md"])
def test_in_page_links_of_the_operator_docs_resolve(name: str) -> None:
    text = (REPO / "docs" / name).read_text(encoding="utf-8")
    anchors = markdown_anchors(text)
    links = re.findall(r"\]\(#([^)]+)\)", text)
    assert [link for link in links if link not in anchors] == []


def test_decision_records_are_numbered_in_order() -> None:
    text = (REPO / "docs" / "decisions.md").read_text(encoding="utf-8")
    numbers = [int(n) for n in re.findall(r"^## ADR-(\d{3}):", text, re.M)]
    assert numbers == list(range(1, len(numbers) + 1))
    assert len(numbers) >= 10
