"""The deployment files under cluster/ are wired consistently (no Ray, no network, no cluster).

No KubeRay CRD schema is vendored (the generated CRDs are hundreds of kB), so the RayCluster and
RayJob checks are the fields the ray.io/v1 CRDs require or KubeRay needs to build pods:
`headGroupSpec` with `rayStartParams` and a pod template whose containers have an image,
`workerGroupSpecs` with `groupName`, `rayStartParams`, `replicas` between `minReplicas` and
`maxReplicas` and a template, and RayJob's `entrypoint`. The launcher YAMLs are validated
against Ray's own schema (`ray/autoscaler/ray-schema.json`, read from the installed package
without importing ray) plus the keys `ray up` needs. Each check is a function returning its
problems, and the last tests feed broken copies to them: a port mismatch or a literal Store
URL is caught.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CLUSTER = ROOT / "cluster"
KUBERAY = CLUSTER / "kuberay"
LAUNCHER = CLUSTER / "launcher"
HEAD = {"ray.io/node-type": "head"}


def load(path: Path) -> list[dict[str, Any]]:
    return [document for document in yaml.safe_load_all(path.read_text()) if document is not None]


def default_metrics_port() -> int:
    """The Monitor's default port, read from the source (importing it would import ray)."""
    source = (ROOT / "sopy_actors" / "monitoring" / "monitor_actor.py").read_text()
    match = re.search(r"^DEFAULT_METRICS_PORT = (\d+)$", source, re.M)
    assert match, "DEFAULT_METRICS_PORT not found in monitor_actor.py"
    return int(match.group(1))


def cluster_specs(documents: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    """(name, RayCluster spec) of every RayCluster and every RayJob's rayClusterSpec."""
    specs = []
    for document in documents:
        if document["kind"] == "RayCluster":
            specs.append((document["metadata"]["name"], document["spec"]))
        elif document["kind"] == "RayJob" and "rayClusterSpec" in document["spec"]:
            specs.append((document["metadata"]["name"], document["spec"]["rayClusterSpec"]))
    return specs


def ray_containers(spec: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    groups = [("head", spec["headGroupSpec"])] + [(g["groupName"], g) for g in spec.get("workerGroupSpecs", [])]
    return [(group, c) for group, g in groups for c in g["template"]["spec"]["containers"]]


def all_containers(documents: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    found = [(f"{name}/{group}", c) for name, spec in cluster_specs(documents) for group, c in ray_containers(spec)]
    for document in documents:
        if document["kind"] == "RayJob" and "submitterPodTemplate" in document["spec"]:
            for container in document["spec"]["submitterPodTemplate"]["spec"]["containers"]:
                found.append((f"{document['metadata']['name']}/submitter", container))
    return found


def env(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {item["name"]: item for item in container.get("env", [])}


def example_secrets() -> dict[str, set[str]]:
    secrets = {}
    for document in load(KUBERAY / "secrets.example.yaml"):
        assert document["kind"] == "Secret"
        secrets[document["metadata"]["name"]] = set(document.get("stringData", {})) | set(document.get("data", {}))
    return secrets


def kuberay_documents() -> list[dict[str, Any]]:
    return [d for name in ("raycluster.yaml", "rayjob.yaml") for d in load(KUBERAY / name)]


# -- checks: each returns its problems ---------------------------------------------------------


def check_ray_cluster_spec(name: str, spec: dict[str, Any]) -> list[str]:
    problems = []
    head = spec.get("headGroupSpec") or {}
    if "rayStartParams" not in head:
        problems.append(f"{name}: headGroupSpec.rayStartParams missing")
    if not head.get("template", {}).get("spec", {}).get("containers"):
        problems.append(f"{name}: headGroupSpec.template.spec.containers missing")
    groups = spec.get("workerGroupSpecs")
    if not groups:
        problems.append(f"{name}: no workerGroupSpecs")
    for group in groups or []:
        label = f"{name}/{group.get('groupName')}"
        for field in ("groupName", "rayStartParams", "template", "replicas", "minReplicas", "maxReplicas"):
            if field not in group:
                problems.append(f"{label}: {field} missing")
        counts = {"replicas", "minReplicas", "maxReplicas"} <= set(group)
        if counts and not group["minReplicas"] <= group["replicas"] <= group["maxReplicas"]:
            problems.append(f"{label}: replicas not between minReplicas and maxReplicas")
        if not group.get("template", {}).get("spec", {}).get("containers"):
            problems.append(f"{label}: template.spec.containers missing")
    if problems:
        return problems
    for group, container in ray_containers(spec):
        label = f"{name}/{group}/{container.get('name')}"
        if not container.get("image"):
            problems.append(f"{label}: no image")
        requests = container.get("resources", {}).get("requests", {})
        if not {"cpu", "memory"} <= set(requests):
            problems.append(f"{label}: resources.requests needs cpu and memory")
    return problems


def check_monitor_port(documents: list[dict[str, Any]], monitors: list[dict[str, Any]], port: int) -> list[str]:
    """The head containers expose `port` as `sopy-metrics` and a ServiceMonitor scrapes it there."""
    problems = []
    for name, spec in cluster_specs(documents):
        ports = {
            p.get("name"): p["containerPort"]
            for c in spec["headGroupSpec"]["template"]["spec"]["containers"]
            for p in c.get("ports", [])
        }
        if ports.get("sopy-metrics") != port:
            problems.append(f"{name}: head port sopy-metrics is {ports.get('sopy-metrics')}, not {port}")
    scraped = [
        m
        for m in monitors
        if m["kind"] == "ServiceMonitor"
        and m["spec"]["selector"].get("matchLabels") == HEAD
        and any(e.get("port") == "sopy-metrics" for e in m["spec"]["endpoints"])
    ]
    if not scraped:
        problems.append("no ServiceMonitor scrapes port sopy-metrics of the head Service")
    return problems


def check_store_url(containers: list[tuple[str, dict[str, Any]]], secrets: dict[str, set[str]]) -> list[str]:
    """SOPY_STORE_URL only from a Secret of secrets.example.yaml, and on every head."""
    problems = []
    for label, container in containers:
        item = env(container).get("SOPY_STORE_URL")
        if item is None:
            if label.endswith("/head"):
                problems.append(f"{label}: no SOPY_STORE_URL (the first driver and the Store run on the head)")
            continue
        if "value" in item:
            problems.append(f"{label}: SOPY_STORE_URL is a literal; use valueFrom.secretKeyRef")
            continue
        ref = item.get("valueFrom", {}).get("secretKeyRef", {})
        if ref.get("key") not in secrets.get(ref.get("name"), set()):
            problems.append(f"{label}: SOPY_STORE_URL from {ref}, not a Secret/key of secrets.example.yaml")
    return problems


def check_token_auth(containers: list[tuple[str, dict[str, Any]]], secrets: dict[str, set[str]]) -> list[str]:
    problems = []
    for label, container in containers:
        variables = env(container)
        if variables.get("RAY_AUTH_MODE", {}).get("value") != "token":
            problems.append(f"{label}: RAY_AUTH_MODE is not 'token'")
        ref = variables.get("RAY_AUTH_TOKEN", {}).get("valueFrom", {}).get("secretKeyRef", {})
        if "value" in variables.get("RAY_AUTH_TOKEN", {}) or ref.get("key") not in secrets.get(ref.get("name"), set()):
            problems.append(f"{label}: RAY_AUTH_TOKEN must come from a Secret of secrets.example.yaml")
    return problems


def prometheus_sopy_ports() -> set[int]:
    config = yaml.safe_load((CLUSTER / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    targets = [t for static in jobs["sopy"]["static_configs"] for t in static["targets"]]
    return {int(target.rsplit(":", 1)[1]) for target in targets}


def launcher_schema() -> dict[str, Any]:
    spec = importlib.util.find_spec("ray")
    assert spec is not None and spec.submodule_search_locations
    path = Path(next(iter(spec.submodule_search_locations))) / "autoscaler" / "ray-schema.json"
    return json.loads(path.read_text())


def check_launcher(config: dict[str, Any], port: int) -> list[str]:
    problems = []
    provider = config.get("provider", {})
    if not config.get("cluster_name") or not provider.get("type"):
        problems.append("cluster_name and provider.type are required")
    if provider.get("type") == "local":
        if not provider.get("head_ip") or not provider.get("worker_ips"):
            problems.append("the local provider needs head_ip and worker_ips")
    elif config.get("head_node_type") not in config.get("available_node_types", {}):
        problems.append("head_node_type must name one of available_node_types")
    setup = " ".join(config.get("setup_commands", []))
    if "pip install" not in setup or "sopy_actors" not in setup:
        problems.append("setup_commands must pip install the sopy_actors package")
    if "cluster.env" not in " ".join(config.get("file_mounts", {})) or "source ~/.sopy/cluster.env" not in setup:
        problems.append("SOPY_STORE_URL must come from the mounted env file (file_mounts + setup_commands)")
    if "~/.ray/auth_token" not in config.get("file_mounts", {}):
        problems.append("the Ray token file must be mounted on every node")
    for key in ("head_start_ray_commands", "worker_start_ray_commands"):
        for command in config.get(key, []):
            if "ray start" in command and "RAY_AUTH_MODE=token" not in command:
                problems.append(f"{key}: `ray start` without RAY_AUTH_MODE=token")
    head = " ".join(config.get("head_start_ray_commands", []))
    if f"--metrics-port {port}" not in head or "--metrics-host 0.0.0.0" not in head:
        problems.append(f"the head's bootstrap must bind the Monitor on 0.0.0.0:{port}")
    text = yaml.safe_dump(config)
    if re.search(r"postgres(ql)?://", text):
        problems.append("a literal database URL: keep it in ~/.sopy/cluster.env")
    return problems


# -- tests -------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", sorted([*CLUSTER.rglob("*.yaml"), *CLUSTER.rglob("*.yml")]), ids=lambda p: p.name)
def test_every_yaml_file_parses(path: Path) -> None:
    assert load(path), f"{path} has no documents"


@pytest.mark.parametrize("path", sorted(KUBERAY.glob("*.yaml")), ids=lambda p: p.name)
def test_every_kubernetes_object_has_api_version_kind_and_name(path: Path) -> None:
    for document in load(path):
        assert document.get("apiVersion") and document.get("kind"), document
        assert document.get("metadata", {}).get("name"), document


def test_kuberay_objects_have_the_fields_the_crds_require() -> None:
    documents = kuberay_documents()
    assert {d["kind"] for d in documents} == {"RayCluster", "RayJob"}
    assert all(d["apiVersion"] == "ray.io/v1" for d in documents)
    specs = cluster_specs(documents)
    assert len(specs) == 2
    assert [p for name, spec in specs for p in check_ray_cluster_spec(name, spec)] == []
    job = next(d for d in documents if d["kind"] == "RayJob")
    assert "sopy-actors run" in job["spec"]["entrypoint"] or "python" in job["spec"]["entrypoint"]


def test_every_container_runs_the_image_built_from_the_dockerfile() -> None:
    images = {c["image"] for _, c in all_containers(kuberay_documents())}
    assert len(images) == 1, images
    assert "sopy-actors" in images.pop()


def test_monitor_port_is_the_same_everywhere() -> None:
    port = default_metrics_port()
    documents = kuberay_documents()
    assert check_monitor_port(documents, load(KUBERAY / "monitoring.yaml"), port) == []
    assert prometheus_sopy_ports() == {port}
    raycluster = (KUBERAY / "raycluster.yaml").read_text()
    assert f"--metrics-port {port}" in raycluster and "--metrics-host 0.0.0.0" in raycluster
    job = next(d for d in documents if d["kind"] == "RayJob")
    assert f"metrics_port={port}" in job["spec"]["entrypoint"] and 'metrics_host="0.0.0.0"' in job["spec"]["entrypoint"]


def test_ray_metrics_are_scraped_on_every_pod() -> None:
    monitors = load(KUBERAY / "monitoring.yaml")
    workers = [
        m
        for m in monitors
        if m["kind"] == "PodMonitor" and m["spec"]["selector"]["matchLabels"] == {"ray.io/node-type": "worker"}
    ]
    assert workers and all(e["port"] == "metrics" for m in workers for e in m["spec"]["podMetricsEndpoints"])
    head = [m for m in monitors if m["kind"] == "ServiceMonitor"]
    assert any(e["port"] == "metrics" for m in head for e in m["spec"]["endpoints"])
    for name, spec in cluster_specs(kuberay_documents()):
        for group, container in ray_containers(spec):
            ports = {p.get("name"): p["containerPort"] for p in container.get("ports", [])}
            assert ports.get("metrics") == 8080, f"{name}/{group}"
        groups = [spec["headGroupSpec"], *spec["workerGroupSpecs"]]
        assert all(g["rayStartParams"].get("metrics-export-port") == "8080" for g in groups), name


def test_store_url_comes_from_the_example_secret() -> None:
    assert check_store_url(all_containers(kuberay_documents()), example_secrets()) == []


def test_token_auth_is_on_in_every_ray_container() -> None:
    assert check_token_auth(all_containers(kuberay_documents()), example_secrets()) == []


def test_every_secret_reference_names_an_example_secret() -> None:
    secrets = example_secrets()
    for label, container in all_containers(kuberay_documents()):
        for item in container.get("env", []):
            ref = item.get("valueFrom", {}).get("secretKeyRef")
            if ref:
                assert ref["key"] in secrets.get(ref["name"], set()), f"{label}: {item['name']} -> {ref}"


def test_example_secrets_hold_placeholders_only() -> None:
    for document in load(KUBERAY / "secrets.example.yaml"):
        for key, value in document.get("stringData", {}).items():
            assert "REPLACE" in value, f"{document['metadata']['name']}.{key} looks like a real value"
        assert "data" not in document, "use stringData placeholders, not base64 data"


def test_llm_worker_group_offers_the_llm_resource_and_the_guide_names_it() -> None:
    (_, spec), *_ = cluster_specs(load(KUBERAY / "raycluster.yaml"))
    offered = {}
    for group in spec["workerGroupSpecs"]:
        raw = group["rayStartParams"].get("resources")
        if raw:  # KubeRay's form: a JSON object inside one more pair of quotes
            offered[group["groupName"]] = json.loads(json.loads(raw))
    assert offered.get("llm", {}).get("llm", 0) > 0, offered
    for guide in ("kubernetes.md", "launcher.md"):
        text = (CLUSTER / guide).read_text()
        assert 'resources={"llm"' in text, guide
        assert "num_cpus=0" in text, guide


def test_dockerfile_installs_the_package_as_a_non_root_user_without_secrets() -> None:
    lines = [line.strip() for line in (CLUSTER / "Dockerfile").read_text().splitlines()]
    instructions = [line for line in lines if line and not line.startswith("#")]
    assert instructions[0].startswith("FROM python:3.11-slim")
    assert any(re.match(r"RUN pip install .*\.(\[postgres\])?", line) for line in instructions)
    users = [line.split()[1] for line in instructions if line.startswith("USER ")]
    assert users and users[-1] not in {"root", "0"}
    for line in instructions:
        if line.startswith(("ENV", "ARG")):
            assert not re.search(r"TOKEN|PASSWORD|SECRET|API_KEY|SOPY_STORE_URL", line), line
    # raycluster.yaml's postStart hook runs the bootstrap script from the image.
    assert "COPY cluster/sopy-bootstrap.py ./cluster/sopy-bootstrap.py" in instructions
    assert "WORKDIR /opt/sopy" in instructions
    assert "/opt/sopy/cluster/sopy-bootstrap.py" in (KUBERAY / "raycluster.yaml").read_text()


def test_bootstrap_script_takes_the_options_the_manifests_pass() -> None:
    script = CLUSTER / "sopy-bootstrap.py"
    compile(script.read_text(), script.name, "exec")
    # --help parses the options and exits before Ray is imported.
    shown = subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True, timeout=60, check=False)
    assert shown.returncode == 0, shown.stderr
    for option in ("--address", "--namespace", "--nodes", "--hosts", "--metrics-host", "--metrics-port"):
        assert option in shown.stdout, option


@pytest.mark.parametrize("name", ["aws.yaml", "onprem.yaml"])
def test_launcher_config_matches_rays_schema_and_wires_the_store_and_token(name: str) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    (config,) = load(LAUNCHER / name)
    jsonschema.validate(config, launcher_schema())
    assert check_launcher(config, default_metrics_port()) == []


def test_launchers_cover_one_cloud_and_the_local_provider() -> None:
    types = {load(LAUNCHER / name)[0]["provider"]["type"] for name in ("aws.yaml", "onprem.yaml")}
    assert types == {"aws", "local"}
    aws = load(LAUNCHER / "aws.yaml")[0]
    assert aws["available_node_types"]["ray.worker.llm"]["resources"] == {"llm": 100}


def test_cluster_readme_links_the_guides() -> None:
    readme = (CLUSTER / "README.md").read_text()
    for guide in ("kubernetes.md", "launcher.md", "monitoring.md"):
        assert f"]({guide})" in readme, guide
        assert (CLUSTER / guide).exists(), guide


# -- the checks catch what they are for ---------------------------------------------------------


def test_a_port_mismatch_is_caught() -> None:
    documents = kuberay_documents()
    monitors = load(KUBERAY / "monitoring.yaml")
    port = default_metrics_port()
    assert check_monitor_port(documents, monitors, port + 1) != []
    renamed = copy.deepcopy(monitors)
    for monitor in renamed:
        for endpoint in monitor["spec"].get("endpoints", []):
            if endpoint["port"] == "sopy-metrics":
                endpoint["port"] = "sopy"
    assert check_monitor_port(documents, renamed, port) != []
    moved = copy.deepcopy(documents)
    for _, spec in cluster_specs(moved):
        for container in spec["headGroupSpec"]["template"]["spec"]["containers"]:
            for item in container["ports"]:
                if item["name"] == "sopy-metrics":
                    item["containerPort"] = 9465
    assert len(check_monitor_port(moved, monitors, port)) == 2


def test_a_literal_or_unknown_store_url_is_caught() -> None:
    secrets = example_secrets()
    containers = copy.deepcopy(all_containers(kuberay_documents()))
    label, head = next((label, c) for label, c in containers if label.endswith("/head"))
    for item in head["env"]:
        if item["name"] == "SOPY_STORE_URL":
            item.pop("valueFrom")
            item["value"] = "postgresql://sopy:secret@db:5432/sopy"
    assert check_store_url([(label, head)], secrets) == [f"{label}: SOPY_STORE_URL is a literal; use valueFrom.secretKeyRef"]
    head["env"] = [item for item in head["env"] if item["name"] != "SOPY_STORE_URL"]
    assert check_store_url([(label, head)], secrets) != []
    assert check_store_url(all_containers(kuberay_documents()), {"other": {"url"}}) != []


def test_missing_token_auth_and_bad_specs_are_caught() -> None:
    containers = copy.deepcopy(all_containers(kuberay_documents()))
    containers[-1][1]["env"] = [i for i in containers[-1][1]["env"] if i["name"] != "RAY_AUTH_MODE"]
    assert len(check_token_auth(containers, example_secrets())) == 1
    (name, spec), *_ = cluster_specs(copy.deepcopy(load(KUBERAY / "raycluster.yaml")))
    spec["workerGroupSpecs"][0]["replicas"] = 99
    del spec["headGroupSpec"]["template"]["spec"]["containers"][0]["resources"]
    assert len(check_ray_cluster_spec(name, spec)) == 1  # resources are checked once the shape is right
    spec["workerGroupSpecs"][0]["replicas"] = 2
    assert len(check_ray_cluster_spec(name, spec)) == 1


def test_a_launcher_without_token_or_with_a_literal_url_is_caught() -> None:
    (config,) = load(LAUNCHER / "onprem.yaml")
    broken = copy.deepcopy(config)
    broken["worker_start_ray_commands"] = ["ray start --address=$RAY_HEAD_IP:6379"]
    broken["setup_commands"].append("echo 'export SOPY_STORE_URL=postgresql://u:p@db/sopy' >> ~/.bashrc")
    assert len(check_launcher(broken, default_metrics_port())) == 2
    assert check_launcher(config, default_metrics_port() + 1) != []
