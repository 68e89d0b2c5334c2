"""Offline checks of the deployment files: compose, Kubernetes, Prometheus, Grafana, Dockerfile.

Only the standard library, pyyaml and pytest: nothing here needs Docker, a cluster,
Prometheus or Grafana. The checkers return lists of problems so that the tests at the
bottom can prove they fail on broken input.
"""

import json
import re
import shutil
import subprocess
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
K8S = DEPLOY / "k8s"
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


def load_yaml_docs(path: Path) -> list[Any]:
    """Every non-empty YAML document of a file (k8s files hold several)."""
    with path.open(encoding="utf-8") as fh:
        return [doc for doc in yaml.safe_load_all(fh) if doc is not None]


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


def k8s_objects() -> list[dict[str, Any]]:
    objects: list[dict[str, Any]] = []
    for path in yaml_files(K8S):
        for doc in load_yaml_docs(path):
            if "kind" in doc:
                objects.append({**doc, "_file": path.name})
    return objects


def by_kind(kind: str) -> dict[str, dict[str, Any]]:
    return {obj["metadata"]["name"]: obj for obj in k8s_objects() if obj["kind"] == kind}


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


def test_compose_has_infrastructure_migrate_and_the_five_services(compose: dict[str, Any]) -> None:
    services = compose["services"]
    expected = {"postgres", "rabbitmq", "migrate", "prometheus", "grafana", *SERVICES}
    assert expected <= set(services)
    assert services["postgres"]["image"] == "postgres:15"
    assert services["rabbitmq"]["image"] == "rabbitmq:3.13-management"
    for infra in ("postgres", "rabbitmq"):
        assert services[infra]["healthcheck"]["test"], f"{infra} needs a healthcheck"
        assert services[infra]["volumes"], f"{infra} needs a data volume"
    assert services["migrate"]["command"] == ["python", "-m", "services.runtime.migrate"]
    assert services["migrate"].get("restart") == "no"


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_compose_service_is_wired_and_health_checked(compose: dict[str, Any], name: str) -> None:
    service = compose["services"][name]
    port = SERVICES[name]
    assert service["command"] == ["python", "-m", f"services.{name}"]

    check = " ".join(service["healthcheck"]["test"])
    assert f"127.0.0.1:{port}/readyz" in check, f"{name} healthcheck must probe its /readyz"

    depends = service["depends_on"]
    assert depends["migrate"]["condition"] == "service_completed_successfully"
    assert depends["postgres"]["condition"] == "service_healthy"
    assert depends["rabbitmq"]["condition"] == "service_healthy"

    env = service["environment"]
    assert env["CLIPMIX_HOST"] == CONTAINER_HOST
    assert "@postgres:5432/clipmix" in env["CLIPMIX_DATABASE_URL"]
    assert "@rabbitmq:5672/" in env["CLIPMIX_AMQP_URL"]
    assert service["image"] == compose["services"]["migrate"]["image"], "one image for all"


def test_compose_publishes_only_the_gateway_api_port(compose: dict[str, Any]) -> None:
    assert "8080:8080" in compose["services"]["gateway"]["ports"]
    for name in set(SERVICES) - {"gateway"}:
        assert not compose["services"][name].get("ports"), f"{name} should not be published"


def test_compose_bind_mounts_exist(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        for volume in service.get("volumes") or []:
            source = volume.split(":", 1)[0]
            if source.startswith("."):
                assert (DEPLOY / source).exists(), f"{name} mounts missing {source}"
    prometheus_cmd = " ".join(compose["services"]["prometheus"]["command"])
    assert "/etc/prometheus/prometheus.compose.yml" in prometheus_cmd


# --------------------------------------------------------------------------- Kubernetes


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


def test_secret_template_holds_placeholders_only() -> None:
    secrets = [
        doc
        for path in K8S.glob("*.example.yaml")
        for doc in load_yaml_docs(path)
        if doc.get("kind") == "Secret"
    ]
    assert len(secrets) == 1
    data = secrets[0]["stringData"]
    assert set(data) == {"CLIPMIX_DATABASE_URL", "CLIPMIX_AMQP_URL"}
    for key, value in data.items():
        assert "REPLACE_ME" in value, f"{key} must be a clearly marked placeholder"


def test_configmap_holds_only_non_secret_settings() -> None:
    config = by_kind("ConfigMap")["clipmix-config"]["data"]
    assert config["CLIPMIX_HOST"] == CONTAINER_HOST
    assert all(key.startswith("CLIPMIX_") for key in config)
    assert not {"CLIPMIX_DATABASE_URL", "CLIPMIX_AMQP_URL"} & set(config)


def test_migration_job_runs_the_migrator() -> None:
    job = by_kind("Job")["clipmix-migrate"]
    pod = job["spec"]["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    assert pod["containers"][0]["command"] == ["python", "-m", "services.runtime.migrate"]
    assert pod["containers"][0]["resources"]["limits"]


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
    assert annotations["prometheus.io/port"] == str(port)
    assert annotations["prometheus.io/path"] == "/metrics"

    (container,) = pod["containers"]
    assert container["command"] == ["python", "-m", f"services.{name}"]
    assert {"name": "http", "containerPort": port, "protocol": "TCP"} in container["ports"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    resources = container["resources"]
    for kind in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(resources[kind]), f"{name} {kind} need cpu and memory"
    env_from = {next(iter(src)): next(iter(src.values()))["name"] for src in container["envFrom"]}
    assert env_from == {"configMapRef": "clipmix-config", "secretRef": "clipmix-secrets"}
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True

    service = by_kind("Service")[f"clipmix-{name}"]
    assert service["spec"]["selector"] == selector
    assert service["spec"]["ports"][0]["port"] == port


def test_gateway_has_a_pod_disruption_budget() -> None:
    pdb = by_kind("PodDisruptionBudget")["clipmix-gateway"]
    deployment = by_kind("Deployment")["clipmix-gateway"]
    assert pdb["spec"]["selector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]
    assert pdb["spec"]["minAvailable"] >= 1
    assert pdb["spec"]["minAvailable"] < deployment["spec"]["replicas"]


def test_every_k8s_object_lives_in_the_clipmix_namespace() -> None:
    for obj in k8s_objects():
        if obj["kind"] in {"Namespace", "Kustomization"}:
            continue
        assert obj["metadata"].get("namespace") == "clipmix", f"{obj['_file']}: {obj['kind']}"


# --------------------------------------------------------------------------- Prometheus


def test_local_prometheus_scrapes_all_five_ports() -> None:
    config = load_yaml(PROMETHEUS / "prometheus.yml")
    expected = {f"127.0.0.1:{port}" for port in SERVICES.values()}
    assert expected <= static_targets(config)
    assert "alerts.yml" in config["rule_files"]


def test_compose_prometheus_scrapes_the_compose_service_names() -> None:
    config = load_yaml(PROMETHEUS / "prometheus.compose.yml")
    expected = {f"{name}:{port}" for name, port in SERVICES.items()}
    assert expected <= static_targets(config)
    assert "alerts.yml" in config["rule_files"]


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


PROMTOOL = shutil.which("promtool")


@pytest.mark.skipif(PROMTOOL is None, reason="promtool not installed (apt-get install prometheus)")
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
    assert PROMTOOL is not None
    done = subprocess.run(
        [PROMTOOL, *args], cwd=PROMETHEUS, capture_output=True, text=True, timeout=60
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
