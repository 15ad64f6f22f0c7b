"""deploy/ is checked in CI: the manifests must be valid, complete and consistent, and an invalid one fails.

Offline: kubernetes-validate ships its schemas; docker and kubectl are used only where they exist.
"""

from __future__ import annotations

import copy
import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate.utils
import pytest
import yaml

from tests.deploy import validation
from tests.deploy.validation import (
    COMPOSE_FILE,
    DEPLOY,
    DEPLOY_DOC,
    KUBERNETES_DIR,
    KUBERNETES_VERSION,
    ROOT,
)


def kubernetes_documents() -> list[tuple[Path, dict[str, Any]]]:
    documents, problems = validation.load_kubernetes()
    assert problems == []
    return documents


def the(kind: str, documents: list[tuple[Path, dict[str, Any]]] | None = None) -> dict[str, Any]:
    """A copy of the one document of `kind` that runs the gateway (or the only one of its kind)."""
    found = [d for _, d in documents or kubernetes_documents() if d.get("kind") == kind]
    if kind == "Deployment":
        found = [d for d in found if d["metadata"]["name"] == "dentgate-gateway"]
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return copy.deepcopy(found[0])


def replaced(
    documents: list[tuple[Path, dict[str, Any]]], *changed: dict[str, Any]
) -> list[tuple[Path, dict[str, Any]]]:
    """`documents` with each of `changed` in place of the document of the same kind and name."""
    by_key = {(d["kind"], d["metadata"]["name"]): d for d in changed}
    return [(path, by_key.get((d["kind"], (d.get("metadata") or {}).get("name")), d)) for path, d in documents]


def gateway_container(deployment: dict[str, Any]) -> dict[str, Any]:
    return next(c for c in deployment["spec"]["template"]["spec"]["containers"] if c["name"] == "gateway")


# --- Kubernetes ---------------------------------------------------------------------------------------------------


def test_the_pinned_kubernetes_version_is_shipped_by_kubernetes_validate() -> None:
    shipped = {".".join(v.split(".")[:2]) for v in kubernetes_validate.utils.all_versions()}
    assert KUBERNETES_VERSION in shipped


def test_every_kubernetes_manifest_is_valid_against_the_api_schema() -> None:
    documents = kubernetes_documents()
    kinds = {document["kind"] for _, document in documents}
    assert {"Namespace", "ServiceAccount", "ConfigMap", "Deployment", "Service", "Ingress"} <= kinds
    assert {"PodDisruptionBudget", "NetworkPolicy", "Job", "Kustomization"} <= kinds
    assert validation.check_kubernetes_schemas(documents) == []


def test_the_kubernetes_deployment_has_what_it_relies_on() -> None:
    assert validation.check_kubernetes_facts(kubernetes_documents()) == []


def test_the_gateway_deployment_as_the_issue_asks() -> None:
    """Spelled out: at least two replicas, probes on /readyz and /healthz, TLS, a PDB, a NetworkPolicy, a Job."""
    documents = kubernetes_documents()
    deployment = the("Deployment", documents)
    container = gateway_container(deployment)
    assert deployment["spec"]["replicas"] >= 2
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert "--no-migrate" in container["args"]
    assert the("Ingress", documents)["spec"]["tls"][0]["secretName"] == "dentgate-tls"
    assert the("PodDisruptionBudget", documents)["spec"]["minAvailable"] == 1
    assert the("Job", documents)["spec"]["template"]["spec"]["containers"][0]["args"] == ["admin", "migrate"]
    assert the("ServiceAccount", documents)["automountServiceAccountToken"] is False
    assert {p["metadata"]["name"] for _, p in documents if p["kind"] == "NetworkPolicy"} >= {"dentgate-gateway"}


def test_the_kustomization_lists_every_manifest() -> None:
    assert validation.check_kustomization() == []


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_kustomize_builds_the_manifests_into_valid_objects() -> None:
    built = subprocess.run(
        ["kubectl", "kustomize", str(KUBERNETES_DIR)], capture_output=True, text=True, timeout=120, check=False
    )
    assert built.returncode == 0, built.stderr
    objects = [d for d in yaml.safe_load_all(built.stdout) if d]
    assert len(objects) == len([d for _, d in kubernetes_documents()]) - 2  # less the kustomization and controller
    for document in objects:
        assert validation.validate_schema(document, f"kustomize {document['kind']}") == []
    images = {
        c["image"] for d in objects for c in d.get("spec", {}).get("template", {}).get("spec", {}).get("containers", [])
    }
    assert images == {"registry.example.jp/dentgate:0.1.0"}


# --- an invalid Kubernetes manifest fails ---------------------------------------------------------------------


def test_a_replica_count_given_as_a_string_is_rejected() -> None:
    deployment = the("Deployment")
    deployment["spec"]["replicas"] = "2"
    problems = validation.validate_schema(deployment, "Deployment")
    assert len(problems) == 1
    assert "spec.replicas" in problems[0] and "'2' is not of type 'integer'" in problems[0]


def test_a_misspelt_field_is_rejected() -> None:
    deployment = the("Deployment")
    container = gateway_container(deployment)
    container["readinessProbee"] = container.pop("readinessProbe")
    problems = validation.validate_schema(deployment, "Deployment")
    assert len(problems) == 1 and "'readinessProbee' was unexpected" in problems[0]
    # and the facts notice the probe is gone
    problems = validation.check_kubernetes_facts(replaced(kubernetes_documents(), deployment))
    assert any("readinessProbe must GET /readyz" in p for p in problems)


def test_a_single_replica_an_unprotected_container_and_a_missing_budget_are_rejected() -> None:
    documents = kubernetes_documents()
    deployment = the("Deployment", documents)
    deployment["spec"]["replicas"] = 1
    del gateway_container(deployment)["securityContext"]["readOnlyRootFilesystem"]
    without_budget = [(path, d) for path, d in replaced(documents, deployment) if d["kind"] != "PodDisruptionBudget"]
    problems = validation.check_kubernetes_facts(without_budget)
    assert any("replicas must be an integer of at least 2, is 1" in p for p in problems)
    assert any("container gateway: readOnlyRootFilesystem must be true" in p for p in problems)
    assert any("no PodDisruptionBudget" in p for p in problems)


def test_a_secret_the_doc_does_not_create_is_rejected(tmp_path: Path) -> None:
    doc = tmp_path / "deploy.md"
    doc.write_text(DEPLOY_DOC.read_text(encoding="utf-8").replace("dentgate-notifications", "dentgate-mail"))
    problems = validation.check_kubernetes_facts(kubernetes_documents(), doc)
    assert problems and all("Secret 'dentgate-notifications'" in p for p in problems)


def test_a_misspelt_setting_and_a_wrong_command_are_rejected() -> None:
    documents = kubernetes_documents()
    config_map = copy.deepcopy(next(d for _, d in documents if d["metadata"].get("name") == "dentgate-config"))
    config_map["data"]["DENTGATE_STORAGE_URI"] = config_map["data"].pop("DENTGATE_STORAGE_URL")
    job = the("Job", documents)
    job["spec"]["template"]["spec"]["containers"][0]["args"] = ["admin", "migrat"]
    problems = validation.check_kubernetes_facts(replaced(documents, config_map, job))
    assert any("DENTGATE_STORAGE_URI is not a DentGate setting" in p for p in problems)
    assert any("`dentgate admin` has no subcommand 'migrat'" in p for p in problems)


def test_ci_fails_on_a_broken_manifest_file(tmp_path: Path) -> None:
    """End to end, as CI runs it: the same directory with one field misspelt gives a problem; intact, none."""
    copied = tmp_path / "kubernetes"
    shutil.copytree(KUBERNETES_DIR, copied)
    assert validation.check_kubernetes(copied) == []
    service = copied / "service.yaml"
    service.write_text(service.read_text(encoding="utf-8").replace("targetPort:", "targetport:"))
    problems = validation.check_kubernetes(copied)
    assert any("'targetport' was unexpected" in p for p in problems)


# --- Compose ------------------------------------------------------------------------------------------------------


def test_the_compose_file_is_consistent() -> None:
    assert validation.check_compose() == []


def test_the_compose_file_runs_two_gateways_after_the_migration() -> None:
    compose, problems = validation.load_compose()
    assert problems == []
    services = compose["services"]
    assert services["gateway"]["deploy"]["replicas"] >= 2
    assert services["gateway"]["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
    assert services["gateway"]["depends_on"]["db"] == {"condition": "service_healthy"}
    assert services["migrate"]["command"] == ["admin", "migrate"]
    assert services["db"]["image"] == "postgres:15"
    assert services["gateway"]["depends_on"]["createbuckets"]["condition"] == "service_completed_successfully"
    script = services["createbuckets"]["command"][0]
    assert "--with-versioning store/dentgate-objects" in script and "--with-lock store/dentgate-checkpoints" in script


def write_compose(tmp_path: Path, compose: dict[str, Any]) -> Path:
    """The changed compose file beside copies of what it refers to, so only the change can be a problem."""
    for name in ("nginx", "secrets"):
        shutil.copytree(DEPLOY / name, tmp_path / name)
    shutil.copy(DEPLOY / ".env.example", tmp_path / ".env.example")
    for service in compose["services"].values():
        if "build" in service:
            service["build"] = {**service["build"], "context": str(ROOT)}
    path = tmp_path / "compose.yaml"
    path.write_text(yaml.safe_dump(compose, sort_keys=False), encoding="utf-8")
    return path


def test_a_dependency_on_a_missing_service_is_rejected(tmp_path: Path) -> None:
    compose, _ = validation.load_compose()
    compose["services"]["gateway"]["depends_on"]["cache"] = {"condition": "service_healthy"}
    path = write_compose(tmp_path, compose)
    problems = validation.check_compose(path, tmp_path / ".env.example")
    assert problems == [f"{path}: service gateway: depends_on 'cache', which is not a service"]


def test_one_replica_an_undeclared_volume_and_a_missing_healthcheck_are_rejected(tmp_path: Path) -> None:
    compose, _ = validation.load_compose()
    services = compose["services"]
    services["gateway"]["deploy"]["replicas"] = 1
    services["gateway"]["volumes"].append("uploads:/srv/uploads")
    del services["db"]["healthcheck"]
    services["proxy"]["networks"] = ["frontend"]
    problems = validation.check_compose(write_compose(tmp_path, compose), tmp_path / ".env.example")
    assert any("1 gateway replica(s); at least 2 are needed" in p for p in problems)
    assert any("volume 'uploads' is not declared" in p for p in problems)
    assert any("waits for db to be healthy, but db has no healthcheck" in p for p in problems)
    assert any("network 'frontend' is not declared" in p for p in problems)


def test_a_gateway_that_migrates_itself_or_names_an_unknown_option_is_rejected(tmp_path: Path) -> None:
    compose, _ = validation.load_compose()
    compose["services"]["gateway"]["command"] = ["serve", "--host", "0.0.0.0", "--port", "8765", "--worker", "2"]
    problems = validation.check_compose(write_compose(tmp_path, compose), tmp_path / ".env.example")
    assert any("`dentgate serve` has no option --worker" in p for p in problems)
    assert any("must run --no-migrate" in p for p in problems)


@pytest.mark.skipif(
    shutil.which("docker") is None
    or subprocess.run(["docker", "compose", "version"], capture_output=True, check=False).returncode != 0,
    reason="docker compose is not installed",
)
def test_docker_compose_accepts_the_file(tmp_path: Path) -> None:
    for name in ("gateway.env", "s3.env"):  # compose reads env files while it parses; examples stand in for them
        (tmp_path / name).write_text((DEPLOY / "secrets" / f"{name}.example").read_text(encoding="utf-8"))
    compose, _ = validation.load_compose()
    for service in compose["services"].values():
        if "env_file" in service:
            service["env_file"] = [str(tmp_path / Path(f).name) for f in service["env_file"]]
    for secret in compose["secrets"].values():
        secret["file"] = str(tmp_path / "placeholder")
    (tmp_path / "placeholder").write_text("placeholder")
    shutil.copytree(DEPLOY / "nginx", tmp_path / "nginx")
    path = tmp_path / "compose.yaml"
    path.write_text(yaml.safe_dump(compose), encoding="utf-8")
    env = {"PATH": "/usr/bin:/bin:/usr/local/bin", "DENTGATE_PUBLIC_URL": "https://dentgate.example.jp"}
    checked = subprocess.run(
        ["docker", "compose", "-f", str(path), "--project-directory", str(tmp_path), "config", "-q"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert checked.returncode == 0, checked.stderr


# --- nginx, systemd, docs -----------------------------------------------------------------------------------------


def test_the_proxy_speaks_tls_1_3_only_and_streams_bodies() -> None:
    assert validation.check_nginx() == []


def test_a_proxy_allowing_tls_1_2_is_rejected(tmp_path: Path) -> None:
    conf = tmp_path / "dentgate.conf"
    text = validation.NGINX_CONF.read_text(encoding="utf-8")
    conf.write_text(text.replace("ssl_protocols TLSv1.3;", "ssl_protocols TLSv1.2 TLSv1.3;").replace("65m", "1m"))
    problems = validation.check_nginx(conf)
    assert any("ssl_protocols must be TLSv1.3 alone" in p for p in problems)
    assert any("client_max_body_size ['1m'] is below" in p for p in problems)


def test_the_units_are_the_three_expected() -> None:
    assert [p.name for p in validation.unit_files()] == [
        "dentgate-gateway.service",
        "dentgate-station-agent.service",
        "dentgate-watcher.service",
    ]


@pytest.mark.parametrize("unit", validation.unit_files(), ids=lambda path: path.name)
def test_each_unit_runs_a_real_dentgate_command_safely(unit: Path) -> None:
    assert validation.check_unit(unit) == []


def test_the_units_run_the_station_agent_and_the_watcher() -> None:
    agent = validation.read_unit(validation.SYSTEMD_DIR / "dentgate-station-agent.service")
    watcher = validation.read_unit(validation.SYSTEMD_DIR / "dentgate-watcher.service")
    assert agent["Service"]["ExecStart"][0].split()[1:4] == ["station", "run", "--import-dir"]
    assert watcher["Service"]["ExecStart"][0].split()[1:3] == ["tech", "watch"]
    assert watcher["Install"]["WantedBy"] == ["default.target"]
    assert "User" not in watcher["Service"]


def test_a_unit_with_repeated_keys_parses_as_systemd_reads_it(tmp_path: Path) -> None:
    unit = tmp_path / "repeated.service"
    unit.write_text(
        "[Unit]\nAfter=network-online.target\nAfter=time-sync.target\n[Service]\n"
        "Environment=A=1\nEnvironment=B=2 \\\n  C=3\nExecStart=/x\n"
    )
    parsed = validation.read_unit(unit)
    assert parsed["Unit"]["After"] == ["network-online.target", "time-sync.target"]
    assert validation._environment(parsed) == {"A": "1", "B": "2", "C": "3"}


def test_a_unit_with_an_unknown_subcommand_or_setting_is_rejected(tmp_path: Path) -> None:
    source = (validation.SYSTEMD_DIR / "dentgate-station-agent.service").read_text(encoding="utf-8")
    unit = tmp_path / "broken.service"
    unit.write_text(source.replace("station run", "station runn").replace("DENTGATE_HOME=", "DENTGATE_HOMEDIR="))
    problems = validation.check_unit(unit)
    assert any("`dentgate station` has no subcommand 'runn'" in p for p in problems)
    assert any("DENTGATE_HOMEDIR is not a DentGate setting" in p for p in problems)
    unit.write_text(source.replace("ReadWritePaths=/var/lib/dentgate-station /srv/cam-import", "ReadWritePaths="))
    assert any("/srv/cam-import is written to but not in ReadWritePaths" in p for p in validation.check_unit(unit))


def test_command_lines_are_resolved_through_the_click_tree() -> None:
    check = validation.check_dentgate_command
    assert check(["serve", "--host", "0.0.0.0", "--port", "8765", "--no-migrate"], "x") == []
    assert check(["station", "run", "--import-dir", "/srv/cam"], "x") == []
    assert check(["serve", "--port", "http"], "x") == [
        "x: `dentgate serve --port http`: 'http' is not a valid integer."
    ]
    assert check(["admin"], "x")[0].startswith("x: `dentgate admin` needs a subcommand")
    assert check(["tech", "watch", "/f", "--location", "home"], "x") == ["x: `dentgate tech watch` needs --station"]


def test_the_doc_says_how_to_make_every_secret_and_the_readme_links_it() -> None:
    assert validation.check_doc_names_compose_secrets() == []
    assert "docs/deploy.md" in (ROOT / "README.md").read_text(encoding="utf-8")
    assert validation.documented_secrets().keys() >= {"dentgate-database", "dentgate-gateway-key", "dentgate-tls"}


def test_the_compose_file_exists_where_the_doc_says() -> None:
    assert COMPOSE_FILE.is_file() and (DEPLOY / "Dockerfile").is_file() and (ROOT / ".dockerignore").is_file()
