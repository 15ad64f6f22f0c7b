"""What a broken deploy/ would break, checked offline: each function returns a list of problems (empty: fine).

- Kubernetes: every document under deploy/kubernetes against the API schemas of `KUBERNETES_VERSION`
  (kubernetes-validate, strict: an unknown or misspelt field fails), then the facts the deployment relies on.
- Compose: deploy/compose.yaml parsed with PyYAML; references, replicas, healthchecks and start order.
- systemd: the units parsed as systemd reads them; every `dentgate` command line, wherever it is, must name a
  real subcommand with real options (resolved through click's command tree, `clients.cli.main`).
- nginx: the TLS proxy's few settings that matter (TLS 1.3 only, streamed bodies, the chunk size).

Every `DENTGATE_*` variable named anywhere must be a setting (gateway/settings.py) or a client variable: the
gateway silently ignores an unknown one, so a misspelt name would otherwise go unnoticed.
"""

from __future__ import annotations

import configparser
import re
import shlex
from pathlib import Path
from typing import Any

import click
import kubernetes_validate
import yaml

from clients.cli import main as dentgate_cli
from clients.profile import HOME_VARIABLE, PASSPHRASE_VARIABLE
from gateway.policy import default_policy
from gateway.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
KUBERNETES_DIR = DEPLOY / "kubernetes"
COMPOSE_FILE = DEPLOY / "compose.yaml"
COMPOSE_ENV_EXAMPLE = DEPLOY / ".env.example"
SYSTEMD_DIR = DEPLOY / "systemd"
NGINX_CONF = DEPLOY / "nginx" / "dentgate.conf"
DEPLOY_DOC = ROOT / "docs" / "deploy.md"

# The newest Kubernetes whose schemas kubernetes-validate ships (1.37.0); the manifests must be valid there.
KUBERNETES_VERSION = "1.37"
NAMESPACE = "dentgate"
GATEWAY_PORT = 8765

CLIENT_VARIABLES = frozenset({HOME_VARIABLE, PASSPHRASE_VARIABLE})


def setting_variables() -> frozenset[str]:
    """Every `DENTGATE_*` name the gateway reads."""
    return frozenset(f"DENTGATE_{name.upper()}" for name in Settings.model_fields)


def unknown_variables(names: Any, where: str) -> list[str]:
    known = setting_variables() | CLIENT_VARIABLES
    return [
        f"{where}: {name} is not a DentGate setting (gateway/settings.py) and would be ignored"
        for name in names
        if str(name).startswith("DENTGATE_") and name not in known
    ]


def max_chunk_bytes() -> int:
    return default_policy().transfer.max_chunk_bytes


def size_in_bytes(text: str) -> int:
    """An nginx size (`65m`, `1g`, `512k`, `1048576`) in bytes."""
    match = re.fullmatch(r"(\d+)([kKmMgG]?)", text.strip())
    if match is None:
        raise ValueError(f"not an nginx size: {text!r}")
    return int(match.group(1)) * {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}[match.group(2).lower()]


# --- dentgate command lines ---------------------------------------------------------------------------------------


def _placeholder(value: str) -> bool:
    """A value filled in later (`${VAR}`, `$VAR`, a systemd `%h`): only its presence can be checked."""
    return "$" in value or "%" in value


def check_dentgate_command(argv: list[str], where: str) -> list[str]:
    """`argv` (what follows `dentgate`) must reach a command through click's groups and pass it only its options."""
    command: click.Command = dentgate_cli
    path = ["dentgate"]
    rest = list(argv)
    while isinstance(command, click.Group):
        if not rest or rest[0].startswith("-"):
            return [f"{where}: `{' '.join(path)}` needs a subcommand ({', '.join(sorted(command.commands))})"]
        name = rest.pop(0)
        subcommand = command.commands.get(name)
        if subcommand is None:
            return [f"{where}: `{' '.join(path)}` has no subcommand {name!r} ({', '.join(sorted(command.commands))})"]
        command = subcommand
        path.append(name)
    shown = " ".join(path)
    options = {
        flag: param
        for param in command.params
        if isinstance(param, click.Option)
        for flag in (*param.opts, *param.secondary_opts)
    }
    problems: list[str] = []
    positional: list[str] = []
    index = 0
    while index < len(rest):
        token = rest[index]
        index += 1
        if not token.startswith("-") or token == "-":
            positional.append(token)
            continue
        flag, has_value, value = token.partition("=")
        option = options.get(flag)
        if option is None:
            problems.append(f"{where}: `{shown}` has no option {flag} ({', '.join(sorted(options))})")
            continue
        if option.is_flag or option.count:
            continue
        if not has_value:
            if index >= len(rest):
                problems.append(f"{where}: `{shown} {flag}` needs a value")
                continue
            value = rest[index]
            index += 1
        if not _placeholder(value) and not isinstance(option.type, click.Path):
            try:
                option.type.convert(value, option, None)
            except click.BadParameter as error:
                problems.append(f"{where}: `{shown} {flag} {value}`: {error.message}")
    arguments = [param for param in command.params if isinstance(param, click.Argument)]
    takes_many = any(argument.nargs == -1 for argument in arguments)
    required = sum(1 for argument in arguments if argument.required)
    if len(positional) < required:
        problems.append(f"{where}: `{shown}` needs {required} argument(s), got {positional}")
    if not takes_many and len(positional) > len(arguments):
        problems.append(f"{where}: `{shown}` takes {len(arguments)} argument(s), got {positional}")
    missing = [
        param.opts[0]
        for param in command.params
        if isinstance(param, click.Option) and param.required and not set(param.opts) & {t.split("=")[0] for t in rest}
    ]
    problems += [f"{where}: `{shown}` needs {flag}" for flag in missing]
    return problems


def _flag_value(argv: list[str], flag: str) -> str | None:
    for index, token in enumerate(argv):
        if token == flag and index + 1 < len(argv):
            return argv[index + 1]
        if token.startswith(flag + "="):
            return token.partition("=")[2]
    return None


# --- Kubernetes ---------------------------------------------------------------------------------------------------


def kubernetes_files(directory: Path = KUBERNETES_DIR) -> list[Path]:
    return sorted(p for p in directory.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())


def load_kubernetes(directory: Path = KUBERNETES_DIR) -> tuple[list[tuple[Path, dict[str, Any]]], list[str]]:
    """Every document under `directory` (Kustomization files included), and the files that do not parse."""
    documents: list[tuple[Path, dict[str, Any]]] = []
    problems: list[str] = []
    for path in kubernetes_files(directory):
        try:
            loaded = list(yaml.safe_load_all(path.read_text(encoding="utf-8")))
        except yaml.YAMLError as error:
            problems.append(f"{_shown(path)}: not YAML: {error}")
            continue
        for document in loaded:
            if document is None:
                continue
            if not isinstance(document, dict):
                problems.append(f"{_shown(path)}: a document that is not a mapping")
                continue
            documents.append((path, document))
    return documents, problems


def _shown(path: Path) -> str:
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(path)


def _name(path: Path, document: dict[str, Any]) -> str:
    metadata = document.get("metadata") if isinstance(document.get("metadata"), dict) else {}
    return f"{_shown(path)}: {document.get('kind')}/{metadata.get('name')}"


def validate_schema(document: dict[str, Any], where: str, version: str = KUBERNETES_VERSION) -> list[str]:
    """The document against the Kubernetes API schema, strictly (unknown fields are errors)."""
    if not isinstance(document.get("apiVersion"), str) or not isinstance(document.get("kind"), str):
        return [f"{where}: no apiVersion or kind"]
    try:
        kubernetes_validate.validate(document, version, strict=True)
    except kubernetes_validate.ValidationError as error:
        location = ".".join(str(part) for part in error.absolute_path) or "(document)"
        return [f"{where}: {location}: {error.message}"[:500]]
    except kubernetes_validate.SchemaNotFoundError as error:
        return [f"{where}: {error.message}"]
    return []


def check_kubernetes_schemas(documents: list[tuple[Path, dict[str, Any]]]) -> list[str]:
    problems: list[str] = []
    for path, document in documents:
        if document.get("kind") == "Kustomization":
            continue
        problems += validate_schema(document, _name(path, document))
    return problems


def check_kustomization(directory: Path = KUBERNETES_DIR) -> list[str]:
    """kustomization.yaml lists every manifest beside it, and each one it lists exists."""
    path = directory / "kustomization.yaml"
    if not path.is_file():
        return [f"{_shown(path)}: missing"]
    kustomization = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    listed = kustomization.get("resources") or []
    problems = [
        f"{_shown(path)}: lists {name}, which does not exist" for name in listed if not (directory / name).exists()
    ]
    beside = {p.name for p in directory.glob("*.yaml")} - {"kustomization.yaml"}
    problems += [f"{_shown(path)}: does not list {name}" for name in sorted(beside - set(listed))]
    return problems


def _of_kind(documents: list[tuple[Path, dict[str, Any]]], kind: str) -> list[dict[str, Any]]:
    return [document for _, document in documents if document.get("kind") == kind]


def _pod_spec(document: dict[str, Any]) -> dict[str, Any]:
    return ((document.get("spec") or {}).get("template") or {}).get("spec") or {}


def _pod_labels(document: dict[str, Any]) -> dict[str, str]:
    return (((document.get("spec") or {}).get("template") or {}).get("metadata") or {}).get("labels") or {}


def _selects(selector: dict[str, Any] | None, labels: dict[str, str]) -> bool:
    wanted = (selector or {}).get("matchLabels") or {}
    return bool(wanted) and all(labels.get(key) == value for key, value in wanted.items())


def _containers(pod: dict[str, Any]) -> list[dict[str, Any]]:
    return [*(pod.get("initContainers") or []), *(pod.get("containers") or [])]


def _dentgate_argv(container: dict[str, Any]) -> list[str] | None:
    """The container's arguments to `dentgate` (the image's entrypoint), or None when it runs something else."""
    command = container.get("command")
    if command:
        if Path(str(command[0])).name != "dentgate":
            return None
        return [str(part) for part in (*command[1:], *(container.get("args") or []))]
    return [str(part) for part in container.get("args") or []]


def _probe_path(container: dict[str, Any], probe: str) -> str | None:
    return (((container.get(probe) or {}).get("httpGet")) or {}).get("path")


def _check_pod_security(pod: dict[str, Any], where: str) -> list[str]:
    problems: list[str] = []
    context = pod.get("securityContext") or {}
    if context.get("runAsNonRoot") is not True:
        problems.append(f"{where}: pod securityContext.runAsNonRoot must be true")
    if (context.get("seccompProfile") or {}).get("type") != "RuntimeDefault":
        problems.append(f"{where}: pod seccompProfile must be RuntimeDefault")
    if pod.get("automountServiceAccountToken") is not False:
        problems.append(f"{where}: automountServiceAccountToken must be false")
    for container in _containers(pod):
        name = f"{where} container {container.get('name')}"
        security = container.get("securityContext") or {}
        if security.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{name}: allowPrivilegeEscalation must be false")
        if security.get("readOnlyRootFilesystem") is not True:
            problems.append(f"{name}: readOnlyRootFilesystem must be true")
        if "ALL" not in ((security.get("capabilities") or {}).get("drop") or []):
            problems.append(f"{name}: capabilities must drop ALL")
        if security.get("runAsNonRoot") is not True and context.get("runAsNonRoot") is not True:
            problems.append(f"{name}: runAsNonRoot must be true")
        if not (container.get("resources") or {}).get("requests"):
            problems.append(f"{name}: no resource requests")
    return problems


def _secret_references(documents: list[tuple[Path, dict[str, Any]]]) -> list[tuple[str, str | None, str]]:
    """(secret name, key or None for the whole Secret, where) for every Secret the manifests use."""
    found: list[tuple[str, str | None, str]] = []
    for path, document in documents:
        where = _name(path, document)
        if document.get("kind") == "Ingress":
            found += [
                (tls["secretName"], None, where) for tls in document["spec"].get("tls") or [] if "secretName" in tls
            ]
        pod = _pod_spec(document)
        for container in _containers(pod):
            for variable in container.get("env") or []:
                reference = (variable.get("valueFrom") or {}).get("secretKeyRef")
                if reference:
                    found.append((reference["name"], reference["key"], where))
            for source in container.get("envFrom") or []:
                if "secretRef" in source:
                    found.append((source["secretRef"]["name"], None, where))
        for volume in pod.get("volumes") or []:
            secret = volume.get("secret")
            if secret:
                keys = [item["key"] for item in secret.get("items") or []] or [None]
                found += [(secret["secretName"], key, where) for key in keys]
    return found


def documented_secrets(doc: Path = DEPLOY_DOC) -> dict[str, set[str]]:
    """Each `kubectl create secret` in the doc: the Secret's name and the keys it creates."""
    if not doc.is_file():
        return {}
    text = doc.read_text(encoding="utf-8").replace("\\\n", " ")
    secrets: dict[str, set[str]] = {}
    for line in text.splitlines():
        if "kubectl" not in line or "create secret" not in line:
            continue
        try:
            words = shlex.split(line.strip().strip("`"))
        except ValueError:
            continue
        if "secret" not in words or words.index("secret") + 2 >= len(words):
            continue
        at = words.index("secret")
        kind, name = words[at + 1], words[at + 2]
        keys = secrets.setdefault(name, set())
        if kind == "tls":
            keys |= {"tls.crt", "tls.key"}
        for word in words[at + 3 :]:
            for prefix in ("--from-literal=", "--from-file="):
                if word.startswith(prefix):
                    source = word[len(prefix) :]
                    keys.add(source.split("=", 1)[0] if "=" in source else Path(source).name)
    return secrets


def check_kubernetes_facts(documents: list[tuple[Path, dict[str, Any]]], doc: Path = DEPLOY_DOC) -> list[str]:
    """What the deployment relies on beyond the schema."""
    problems: list[str] = []
    chunk = max_chunk_bytes()
    deployments = _of_kind(documents, "Deployment")
    gateways = [
        d for d in deployments if any((_dentgate_argv(c) or [""])[0] == "serve" for c in _containers(_pod_spec(d)))
    ]
    if not gateways:
        problems.append("deploy/kubernetes: no Deployment runs `dentgate serve`")
    for path, document in documents:
        namespaced = document.get("kind") not in ("Namespace", "Kustomization") and "ingress-nginx" not in path.parts
        if namespaced and (document.get("metadata") or {}).get("namespace") != NAMESPACE:
            problems.append(f"{_name(path, document)}: namespace must be {NAMESPACE!r}")
    service_accounts = {d["metadata"]["name"]: d for d in _of_kind(documents, "ServiceAccount")}
    config_maps = {d["metadata"]["name"]: d for d in _of_kind(documents, "ConfigMap")}
    for config_map in config_maps.values():
        problems += unknown_variables(
            (config_map.get("data") or {}).keys(), f"ConfigMap/{config_map['metadata']['name']}"
        )
    for path, document in documents:
        pod = _pod_spec(document)
        if not pod:
            continue
        where = _name(path, document)
        problems += _check_pod_security(pod, where)
        account = pod.get("serviceAccountName")
        if account not in service_accounts:
            problems.append(f"{where}: serviceAccountName {account!r} is not a ServiceAccount here")
        elif service_accounts[account].get("automountServiceAccountToken") is not False:
            problems.append(f"ServiceAccount/{account}: automountServiceAccountToken must be false")
        for container in _containers(pod):
            for source in container.get("envFrom") or []:
                name = (source.get("configMapRef") or {}).get("name")
                if name is not None and name not in config_maps:
                    problems.append(f"{where}: envFrom ConfigMap {name!r} is not defined here")
            problems += unknown_variables([v.get("name") for v in container.get("env") or []], where)
            argv = _dentgate_argv(container)
            if argv is not None:
                problems += check_dentgate_command(argv, f"{where} container {container.get('name')}")
    for document in gateways:
        where = f"Deployment/{document['metadata']['name']}"
        replicas = document["spec"].get("replicas")
        if not isinstance(replicas, int) or replicas < 2:
            problems.append(f"{where}: replicas must be an integer of at least 2, is {replicas!r}")
        pod = _pod_spec(document)
        for container in pod.get("containers") or []:
            argv = _dentgate_argv(container) or []
            if argv[:1] != ["serve"]:
                continue
            if "--no-migrate" not in argv:
                problems.append(f"{where}: `dentgate serve` must run --no-migrate (the Job migrates)")
            problems += _check_gateway_paths(container, config_maps, where)
            if _probe_path(container, "readinessProbe") != "/readyz":
                problems.append(f"{where}: readinessProbe must GET /readyz")
            if _probe_path(container, "livenessProbe") != "/healthz":
                problems.append(f"{where}: livenessProbe must GET /healthz")
            port = _flag_value(argv, "--port")
            ports = [p.get("containerPort") for p in container.get("ports") or []]
            if port is None or int(port) not in ports:
                problems.append(f"{where}: --port {port} is not a containerPort ({ports})")
        if not pod.get("topologySpreadConstraints") and not (pod.get("affinity") or {}).get("podAntiAffinity"):
            problems.append(f"{where}: replicas are not spread (topologySpreadConstraints or podAntiAffinity)")
        labels = _pod_labels(document)
        if not _selects(document["spec"].get("selector"), labels):
            problems.append(f"{where}: selector does not match the pod template's labels")
        services = [
            s for s in _of_kind(documents, "Service") if _selects({"matchLabels": s["spec"].get("selector")}, labels)
        ]
        if not services:
            problems.append(f"{where}: no Service selects its pods")
        for service in services:
            if service["spec"].get("type", "ClusterIP") != "ClusterIP":
                problems.append(f"Service/{service['metadata']['name']}: must be ClusterIP (the Ingress is the way in)")
            named = {p.get("name") for c in pod.get("containers") or [] for p in c.get("ports") or []}
            for port in service["spec"].get("ports") or []:
                if isinstance(port.get("targetPort"), str) and port["targetPort"] not in named:
                    problems.append(
                        f"Service/{service['metadata']['name']}: targetPort {port['targetPort']} is no port"
                    )
        budgets = [b for b in _of_kind(documents, "PodDisruptionBudget") if _selects(b["spec"].get("selector"), labels)]
        if not any(isinstance(b["spec"].get("minAvailable"), int) and b["spec"]["minAvailable"] >= 1 for b in budgets):
            problems.append(f"{where}: no PodDisruptionBudget with minAvailable >= 1 covers it")
        policies = [p for p in _of_kind(documents, "NetworkPolicy") if _selects(p["spec"].get("podSelector"), labels)]
        if not policies:
            problems.append(f"{where}: no NetworkPolicy covers it")
        for policy in policies:
            if set(policy["spec"].get("policyTypes") or []) != {"Ingress", "Egress"}:
                problems.append(f"NetworkPolicy/{policy['metadata']['name']}: must restrict both Ingress and Egress")
            for rule in policy["spec"].get("ingress") or []:
                if not rule.get("from"):
                    problems.append(f"NetworkPolicy/{policy['metadata']['name']}: an ingress rule admits everyone")
        ingresses = [
            i
            for i in _of_kind(documents, "Ingress")
            for rule in i["spec"].get("rules") or []
            for p in (rule.get("http") or {}).get("paths") or []
            if any(p["backend"].get("service", {}).get("name") == s["metadata"]["name"] for s in services)
        ]
        if not ingresses:
            problems.append(f"{where}: no Ingress routes to its Service")
        for ingress in ingresses:
            name = f"Ingress/{ingress['metadata']['name']}"
            tls = ingress["spec"].get("tls") or []
            if not tls or not all(t.get("secretName") and t.get("hosts") for t in tls):
                problems.append(f"{name}: needs tls with hosts and a secretName")
            annotations = (ingress.get("metadata") or {}).get("annotations") or {}
            body = annotations.get("nginx.ingress.kubernetes.io/proxy-body-size")
            if body is None or size_in_bytes(str(body)) < chunk:
                problems.append(f"{name}: proxy-body-size {body} is below the policy's max_chunk_bytes ({chunk})")
            if annotations.get("nginx.ingress.kubernetes.io/proxy-request-buffering") != "off":
                problems.append(f"{name}: proxy-request-buffering must be off")
    jobs = [
        j
        for j in _of_kind(documents, "Job")
        if any(_dentgate_argv(c) == ["admin", "migrate"] for c in _containers(_pod_spec(j)))
    ]
    if not jobs:
        problems.append("deploy/kubernetes: no Job runs `dentgate admin migrate`")
    for job in jobs:
        for field in ("backoffLimit", "ttlSecondsAfterFinished"):
            if not isinstance(job["spec"].get(field), int):
                problems.append(f"Job/{job['metadata']['name']}: needs {field}")
    documented = documented_secrets(doc)
    for name, key, where in _secret_references(documents):
        if name not in documented:
            problems.append(f"{where}: Secret {name!r} is not created in {_shown(doc)} (`kubectl create secret`)")
        elif key is not None and key not in documented[name]:
            problems.append(f"{where}: Secret {name!r} key {key!r} is not created in {_shown(doc)}")
    return problems


def _check_gateway_paths(container: dict[str, Any], config_maps: dict[str, Any], where: str) -> list[str]:
    """The key file and the data directory the settings name are on volumes (the root filesystem is read-only)."""
    settings: dict[str, str] = {}
    for source in container.get("envFrom") or []:
        name = (source.get("configMapRef") or {}).get("name")
        settings |= (config_maps.get(name) or {}).get("data") or {}
    settings |= {v["name"]: v["value"] for v in container.get("env") or [] if "value" in v}
    mounts = {m["mountPath"]: m for m in container.get("volumeMounts") or []}
    problems = []
    for variable, path in (
        ("DENTGATE_KEY_FILE", Path(settings.get("DENTGATE_KEY_FILE", "/")).parent),
        ("DENTGATE_DATA_DIR", Path(settings.get("DENTGATE_DATA_DIR", "/"))),
    ):
        if variable not in settings:
            problems.append(f"{where}: {variable} is not set (its default is relative to a read-only working folder)")
        elif str(path) not in mounts:
            problems.append(f"{where}: {variable} is in {path}, which is no volume mounted in the container")
    return problems


def check_kubernetes(directory: Path = KUBERNETES_DIR, doc: Path = DEPLOY_DOC) -> list[str]:
    documents, problems = load_kubernetes(directory)
    return problems + check_kubernetes_schemas(documents) + check_kubernetes_facts(documents, doc)


# --- Compose ------------------------------------------------------------------------------------------------------

_INTERPOLATED = re.compile(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)")
_HEALTHY_CONDITIONS = ("service_started", "service_healthy", "service_completed_successfully")


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _depends_on(service: dict[str, Any]) -> dict[str, str]:
    depends = service.get("depends_on") or {}
    if isinstance(depends, list):
        return dict.fromkeys(depends, "service_started")
    return {name: (spec or {}).get("condition", "service_started") for name, spec in depends.items()}


def _environment_names(service: dict[str, Any]) -> list[str]:
    environment = service.get("environment") or {}
    if isinstance(environment, list):
        return [str(item).split("=", 1)[0] for item in environment]
    return [str(name) for name in environment]


def _env_file_names(path: Path) -> list[str]:
    """The variable names an env file (or its example) sets, commented-out suggestions included."""
    names = []
    for line in path.read_text(encoding="utf-8").splitlines():
        match = re.match(r"\s*#?\s*([A-Z_][A-Z0-9_]*)=", line)
        if match:
            names.append(match.group(1))
    return names


def _command(service: dict[str, Any]) -> list[str]:
    command = service.get("command")
    if isinstance(command, str):
        return shlex.split(command)
    return [str(part) for part in command or []]


def _runs_dentgate(service: dict[str, Any]) -> bool:
    build = service.get("build")
    dockerfile = build.get("dockerfile", "") if isinstance(build, dict) else ""
    return dockerfile.endswith("deploy/Dockerfile") or "dentgate" in str(service.get("image", "")).split("/")[-1]


def load_compose(path: Path = COMPOSE_FILE) -> tuple[dict[str, Any], list[str]]:
    try:
        compose = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        return {}, [f"{_shown(path)}: not YAML: {error}"]
    if not isinstance(compose, dict) or not isinstance(compose.get("services"), dict) or not compose["services"]:
        return {}, [f"{_shown(path)}: no services"]
    return compose, []


def check_compose(path: Path = COMPOSE_FILE, env_example: Path = COMPOSE_ENV_EXAMPLE) -> list[str]:
    compose, problems = load_compose(path)
    if problems:
        return problems
    base = path.parent
    services: dict[str, dict[str, Any]] = compose["services"]
    declared = {kind: set((compose.get(kind) or {}).keys()) for kind in ("volumes", "secrets", "networks")}
    declared["networks"].add("default")
    for name, service in services.items():
        where = f"{_shown(path)}: service {name}"
        if not isinstance(service, dict):
            problems.append(f"{where}: not a mapping")
            continue
        if "image" not in service and "build" not in service:
            problems.append(f"{where}: neither image nor build")
        build = service.get("build")
        if isinstance(build, dict):
            context = (base / build.get("context", ".")).resolve()
            if not context.is_dir():
                problems.append(f"{where}: build context {build.get('context')} does not exist")
            elif not (context / build.get("dockerfile", "Dockerfile")).is_file():
                problems.append(f"{where}: Dockerfile {build.get('dockerfile')} does not exist")
        for target, condition in _depends_on(service).items():
            if target not in services:
                problems.append(f"{where}: depends_on {target!r}, which is not a service")
                continue
            if condition not in _HEALTHY_CONDITIONS:
                problems.append(f"{where}: depends_on {target} with unknown condition {condition!r}")
            if condition == "service_healthy" and not services[target].get("healthcheck"):
                problems.append(f"{where}: waits for {target} to be healthy, but {target} has no healthcheck")
            if condition == "service_completed_successfully" and services[target].get("restart", "no") != "no":
                problems.append(f"{where}: waits for {target} to complete, but {target} restarts")
        for volume in _as_list(service.get("volumes")):
            source = volume.get("source") if isinstance(volume, dict) else str(volume).split(":", 1)[0]
            kind = volume.get("type", "volume") if isinstance(volume, dict) else None
            if not source:
                continue
            if source.startswith((".", "/", "~")) or kind == "bind":
                if source.startswith(".") and not (base / source).exists():
                    problems.append(f"{where}: bind mount {source} does not exist")
            elif source not in declared["volumes"]:
                problems.append(f"{where}: volume {source!r} is not declared")
        for secret in _as_list(service.get("secrets")):
            name = secret.get("source") if isinstance(secret, dict) else secret
            if name not in declared["secrets"]:
                problems.append(f"{where}: secret {name!r} is not declared")
        networks = service.get("networks") or []
        for network in networks if isinstance(networks, list) else networks.keys():
            if network not in declared["networks"]:
                problems.append(f"{where}: network {network!r} is not declared")
        for env_file in _as_list(service.get("env_file")):
            relative = env_file.get("path") if isinstance(env_file, dict) else env_file
            example = base / f"{relative}.example"
            if not (base / relative).resolve().is_relative_to((base / "secrets").resolve()):
                problems.append(f"{where}: env_file {relative} is not in {_shown(base / 'secrets')} (git-ignored)")
            if not example.is_file():
                problems.append(f"{where}: env_file {relative} has no {_shown(example)} to start from")
            else:
                problems += unknown_variables(_env_file_names(example), _shown(example))
        problems += unknown_variables(_environment_names(service), where)
        if _runs_dentgate(service):
            problems += check_dentgate_command(_command(service), where)
    for name, secret in (compose.get("secrets") or {}).items():
        source = (secret or {}).get("file")
        if source is None or not (base / source).resolve().is_relative_to((base / "secrets").resolve()):
            problems.append(f"{_shown(path)}: secret {name} must be a file in {_shown(base / 'secrets')}")
    problems += _check_compose_roles(services, path)
    text = path.read_text(encoding="utf-8")
    defined = set(_env_file_names(env_example)) if env_example.is_file() else set()
    for variable in sorted(set(_INTERPOLATED.findall(text)) - defined):
        problems.append(f"{_shown(path)}: ${{{variable}}} is not in {_shown(env_example)}")
    return problems


def _check_compose_roles(services: dict[str, dict[str, Any]], path: Path) -> list[str]:
    """The gateway replicas, the migration before them, the database they wait for."""
    problems: list[str] = []
    where = _shown(path)
    gateways = {n: s for n, s in services.items() if _runs_dentgate(s) and _command(s)[:1] == ["serve"]}
    migrations = {n for n, s in services.items() if _runs_dentgate(s) and _command(s) == ["admin", "migrate"]}
    databases = {n for n, s in services.items() if str(s.get("image", "")).startswith("postgres")}
    counts = [(s.get("deploy") or {}).get("replicas", 1) for s in gateways.values()]
    problems += [
        f"{where}: replicas must be an integer, is {count!r}" for count in counts if not isinstance(count, int)
    ]
    replicas = sum(count for count in counts if isinstance(count, int))
    if replicas < 2:
        problems.append(f"{where}: {replicas} gateway replica(s); at least 2 are needed")
    if not migrations:
        problems.append(f"{where}: no service runs `dentgate admin migrate`")
    if not databases:
        problems.append(f"{where}: no PostgreSQL service")
    for name, service in gateways.items():
        depends = _depends_on(service)
        if "--no-migrate" not in _command(service):
            problems.append(f"{where}: service {name}: `dentgate serve` must run --no-migrate (a service migrates)")
        if not any(depends.get(m) == "service_completed_successfully" for m in migrations):
            problems.append(f"{where}: service {name}: must wait for the migration to complete successfully")
        if not any(depends.get(d) == "service_healthy" for d in databases):
            problems.append(f"{where}: service {name}: must wait for the database to be healthy")
        test = " ".join(str(part) for part in _as_list((service.get("healthcheck") or {}).get("test")))
        if "/readyz" not in test:
            problems.append(f"{where}: service {name}: its healthcheck must ask /readyz")
    for name in databases:
        test = " ".join(str(part) for part in _as_list((services[name].get("healthcheck") or {}).get("test")))
        if "pg_isready" not in test:
            problems.append(f"{where}: service {name}: its healthcheck must run pg_isready")
    return problems


# --- nginx --------------------------------------------------------------------------------------------------------


def _directives(text: str, name: str) -> list[str]:
    return [m.group(1).strip() for m in re.finditer(rf"^\s*{re.escape(name)}\s+([^;{{}}\n]*);", text, re.MULTILINE)]


def check_nginx(path: Path = NGINX_CONF, compose_file: Path = COMPOSE_FILE) -> list[str]:
    where = _shown(path)
    text = re.sub(r"#[^\n]*", "", path.read_text(encoding="utf-8"))
    problems: list[str] = []
    if _directives(text, "ssl_protocols") != ["TLSv1.3"]:
        problems.append(f"{where}: ssl_protocols must be TLSv1.3 alone, is {_directives(text, 'ssl_protocols')}")
    if "off" not in _directives(text, "proxy_request_buffering"):
        problems.append(f"{where}: proxy_request_buffering must be off")
    sizes = _directives(text, "client_max_body_size")
    if not sizes or any(size_in_bytes(size) < max_chunk_bytes() for size in sizes):
        problems.append(f"{where}: client_max_body_size {sizes} is below the policy's max_chunk_bytes")
    if not any(h.startswith("Strict-Transport-Security") for h in _directives(text, "add_header")):
        problems.append(f"{where}: no Strict-Transport-Security header")
    if "X-Forwarded-For $remote_addr" not in _directives(text, "proxy_set_header"):
        problems.append(f"{where}: X-Forwarded-For must be set to $remote_addr (not appended to the client's)")
    compose, _ = load_compose(compose_file)
    services = compose.get("services") or {}
    for server in _directives(text, "server"):
        host, _, port = server.split()[0].partition(":")
        target = services.get(host)
        if target is None:
            problems.append(f"{where}: upstream server {host} is not a compose service")
        elif _flag_value(_command(target), "--port") != port:
            problems.append(f"{where}: upstream port {port} is not the port {host} serves on")
    return problems


# --- systemd ------------------------------------------------------------------------------------------------------


class _Repeated(dict):
    """A section in which a repeated key keeps every assignment, as systemd does (ExecStartPre=, Environment=)."""

    def __setitem__(self, key: str, value: Any) -> None:
        if isinstance(value, list) and isinstance(self.get(key), list):
            self[key].extend(value)
        else:
            super().__setitem__(key, value)


def read_unit(path: Path) -> dict[str, dict[str, list[str]]]:
    """A unit file as {section: {key: [every value assigned]}}; configparser.Error when it does not parse."""
    text = path.read_text(encoding="utf-8").replace("\\\n", " ")  # systemd's line continuation
    parser = configparser.ConfigParser(
        strict=False,
        interpolation=None,
        dict_type=_Repeated,
        delimiters=("=",),
        comment_prefixes=("#", ";"),
        empty_lines_in_values=False,
    )
    parser.optionxform = str  # systemd's keys are case-sensitive
    parser.read_string(text, source=str(path))
    return {
        section: {key: value.split("\n") for key, value in parser.items(section, raw=True)}
        for section in parser.sections()
    }


def _words(unit: dict[str, dict[str, list[str]]], section: str, key: str) -> list[str]:
    return [word for value in unit.get(section, {}).get(key, []) for word in value.split()]


def _one(unit: dict[str, dict[str, list[str]]], section: str, key: str) -> str | None:
    values = unit.get(section, {}).get(key, [])
    return values[-1] if values else None


def _environment(unit: dict[str, dict[str, list[str]]]) -> dict[str, str]:
    assignments: dict[str, str] = {}
    for value in unit.get("Service", {}).get("Environment", []):
        for word in shlex.split(value):
            name, _, setting = word.partition("=")
            assignments[name] = setting
    return assignments


def check_unit(path: Path) -> list[str]:
    where = _shown(path)
    try:
        unit = read_unit(path)
    except configparser.Error as error:
        return [f"{where}: does not parse: {error}"]
    problems = [f"{where}: no [{s}] section" for s in ("Unit", "Service", "Install") if s not in unit]
    if problems:
        return problems
    wanted_by = _words(unit, "Install", "WantedBy")
    user_unit = "default.target" in wanted_by
    exec_start = unit["Service"].get("ExecStart", [])
    if len(exec_start) != 1:
        return problems + [f"{where}: needs exactly one ExecStart, has {len(exec_start)}"]
    argv = shlex.split(exec_start[0])
    if not argv or Path(argv[0]).name != "dentgate" or not argv[0].startswith(("/", "%h/")):
        problems.append(f"{where}: ExecStart must run dentgate by its absolute path, runs {argv[:1]}")
    problems += check_dentgate_command(argv[1:], f"{where} ExecStart")
    environment = _environment(unit)
    problems += unknown_variables(environment.keys(), where)
    if _one(unit, "Service", "Restart") not in ("on-failure", "always"):
        problems.append(f"{where}: Restart must be on-failure")
    if _one(unit, "Service", "NoNewPrivileges") != "yes":
        problems.append(f"{where}: NoNewPrivileges must be yes")
    if user_unit:
        for key in ("User", "Group"):
            if key in unit["Service"]:
                problems.append(f"{where}: a user unit runs as its user; {key}= does not belong in it")
        for target in _words(unit, "Unit", "After"):
            if target in wanted_by:
                problems.append(f"{where}: After={target} and WantedBy={target} make an ordering cycle")
        return problems
    if "multi-user.target" not in wanted_by:
        problems.append(
            f"{where}: a system unit must be WantedBy=multi-user.target (or default.target for a user unit)"
        )
    if _one(unit, "Service", "User") in (None, "root", "0"):
        problems.append(f"{where}: must run as its own user (User=)")
    for target in ("network-online.target", "time-sync.target"):
        if target not in _words(unit, "Unit", "After"):
            problems.append(f"{where}: must start After={target}")
    if "network-online.target" not in _words(unit, "Unit", "Wants"):
        problems.append(f"{where}: must Want network-online.target (After= alone does not pull it in)")
    for key, value in (("ProtectSystem", "strict"), ("PrivateTmp", "yes")):
        if _one(unit, "Service", key) != value:
            problems.append(f"{where}: {key} must be {value}")
    writable = [Path(p.lstrip("-")) for p in _words(unit, "Service", "ReadWritePaths")]
    writable += [Path("/var/lib") / d for d in _words(unit, "Service", "StateDirectory")]
    needs = [_flag_value(argv, flag) for flag in ("--import-dir", "--data-dir")]
    needs += [environment.get(name) for name in ("DENTGATE_HOME", "DENTGATE_DATA_DIR")]
    for needed in filter(None, needs):
        if not any(Path(needed).is_relative_to(w) for w in writable):
            problems.append(f"{where}: {needed} is written to but not in ReadWritePaths (ProtectSystem=strict)")
    return problems


def unit_files(directory: Path = SYSTEMD_DIR) -> list[Path]:
    return sorted(directory.glob("*.service"))


def check_units(directory: Path = SYSTEMD_DIR) -> list[str]:
    return [problem for path in unit_files(directory) for problem in check_unit(path)]


# --- the operator's doc -------------------------------------------------------------------------------------------


def check_doc_names_compose_secrets(path: Path = COMPOSE_FILE, doc: Path = DEPLOY_DOC) -> list[str]:
    """Every secret file and env file the operator must make is named in docs/deploy.md."""
    compose, problems = load_compose(path)
    if problems:
        return problems
    text = doc.read_text(encoding="utf-8") if doc.is_file() else ""
    files = {secret["file"] for secret in (compose.get("secrets") or {}).values() if secret and "file" in secret}
    files |= {
        env_file if isinstance(env_file, str) else env_file["path"]
        for service in compose["services"].values()
        for env_file in _as_list(service.get("env_file"))
    }
    return [f"{_shown(doc)}: does not say how to make deploy/{name}" for name in sorted(files) if name not in text]
