"""deploy/: the shipped configs pass the tools that will load them (promtool, amtool,
hallmon check-config, systemd-analyze), route what they must where they must, and the
Kubernetes manifests are in sync with their sources and carry the fields that matter."""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "kubernetes"
SECRETS = ("hallmon-token", "hallmon-console-token", "hallmon-link-secret")


def need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.skip(f"{tool} not installed")
    return path


def run(*cmd: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


def docs(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]


# --- Prometheus and Alertmanager -------------------------------------------------------

def test_prometheus_config_is_valid_and_loads_the_alertrules():
    out = run(need("promtool"), "check", "config", str(DEPLOY / "prometheus.yml"))
    assert out.returncode == 0, out.stdout + out.stderr
    assert "hallmon.rules.yml" in out.stdout and "SUCCESS" in out.stdout
    cfg = yaml.safe_load((DEPLOY / "prometheus.yml").read_text())
    jobs = {j["job_name"]: j for j in cfg["scrape_configs"]}
    assert jobs["hallmon"]["static_configs"][0]["targets"] == ["hallmon:9108"]  # the alertrules' job="hallmon"


def test_alertmanager_config_is_valid():
    out = run(need("amtool"), "check-config", str(DEPLOY / "alertmanager.yml"))
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.parametrize("labels, receiver", [
    (["alertname=HallmonPosEchoSlow", "fault=pos.slow", "site=s1", "unit=u1", "system=pos"], "hallmon"),
    (["alertname=HallmonUpsBatteryRunningOut", "fault=power.low_battery", "site=s1"], "hallmon"),
    (["alertname=HallmonClocksOverdue", "team=hallmon-ops", "level=2"], "hallmon-ops"),
    (["alertname=HallmonScrapeFailing", "team=hallmon-ops", "instance=a:9108"], "hallmon-ops"),
    (["alertname=HallmonWatchdog", "team=hallmon-ops"], "deadman"),
    (["alertname=HallmonDrillOverdue", "team=emergency-office", "unit=u1", "kind=quarterly"], "emergency-office"),
])
def test_alertmanager_routes(labels, receiver):
    out = run(need("amtool"), "config", "routes", "test", f"--config.file={DEPLOY / 'alertmanager.yml'}", *labels)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == receiver


def test_alertmanager_reaches_hallmons_webhook_with_a_bearer_token_and_groups_like_the_router():
    cfg = yaml.safe_load((DEPLOY / "alertmanager.yml").read_text())
    hook = {r["name"]: r for r in cfg["receivers"]}["hallmon"]["webhook_configs"][0]
    assert hook["url"].endswith("/api/v1/alerts/alertmanager") and hook["send_resolved"] is True
    auth = hook["http_config"]["authorization"]
    assert auth["type"] == "Bearer" and "credentials_file" in auth and "credentials" not in auth
    # every label the route groups by is one every device alert carries
    rules = [r for g in yaml.safe_load((ROOT / "alertrules" / "hallmon.rules.yml").read_text())["groups"]
             for r in g["rules"] if "fault" in r.get("labels", {})]
    assert set(cfg["route"]["group_by"]) <= {"fault", "system", "site", "unit"}
    assert "fault" in cfg["route"]["group_by"] and rules


def test_hallmon_config_is_valid_and_names_the_secrets_it_is_given(tmp_path):
    for name in SECRETS:
        (tmp_path / name).write_text(f"test-{name}-0123456789abcdef0123456789abcdef\n")
    text = (DEPLOY / "hallmon.yml").read_text(encoding="utf-8")
    assert set(re.findall(r"/run/secrets/([\w-]+)", text)) == set(SECRETS)
    cfg = tmp_path / "hallmon.yml"
    cfg.write_text(text.replace("/run/secrets/", f"{tmp_path}/"), encoding="utf-8")
    out = run(sys.executable, "-m", "monitor.cli", "check-config", str(cfg), cwd=ROOT)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "alerts:write" in text


# --- docker ------------------------------------------------------------------------------

def test_docker_compose_wires_the_services_together():
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    svc = compose["services"]
    assert set(svc) == {"hallmon", "redis", "prometheus", "alertmanager", "grafana"}
    assert "--appendonly" in svc["redis"]["command"] and "yes" in svc["redis"]["command"]
    assert set(svc["hallmon"]["secrets"]) == set(SECRETS)
    for name, s in svc.items():
        for vol in s.get("volumes", []):
            src = vol.split(":")[0]
            if src.startswith(".") and not src.startswith("./secrets/"):  # secrets: the operator's
                assert (DEPLOY / src).exists(), f"{name}: {src} does not exist"
        for port in s.get("ports", []):
            assert port.startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"
    am_mounts = dict(v.split(":")[:2] for v in svc["alertmanager"]["volumes"])
    am_cfg = yaml.safe_load((DEPLOY / "alertmanager.yml").read_text())
    token_path = am_cfg["receivers"][0]["webhook_configs"][0]["http_config"]["authorization"]["credentials_file"]
    assert am_mounts["./secrets/hallmon-token"] == token_path
    assert "../alertrules:/etc/prometheus/alertrules:ro" in svc["prometheus"]["volumes"]


def test_dockerfile_lint():
    lines = [l for l in (ROOT / "Dockerfile").read_text().replace("\\\n", " ").splitlines()
             if l.strip() and not l.lstrip().startswith("#")]
    instr = [(l.split()[0].upper(), l.split(None, 1)[1]) for l in lines]
    ops = [i for i, _ in instr]
    assert ops[0] == "FROM" and ":" in instr[0][1] and not instr[0][1].endswith(":latest")
    assert "ADD" not in ops, "COPY, not ADD"
    for op, arg in instr:
        if op == "COPY":
            for src in arg.split()[:-1]:
                assert (ROOT / src).exists(), f"COPY {src}: not in the repository"
        if op in ("ENTRYPOINT", "CMD", "HEALTHCHECK"):
            assert "[" in arg, f"{op} in exec form"
    user = max(i for i, o in enumerate(ops) if o == "USER")
    assert user > max(i for i, o in enumerate(ops) if o == "RUN"), "USER after the last RUN"
    assert dict(instr)["USER"].split(":")[0] not in ("root", "0")
    assert "HEALTHCHECK" in ops and ("EXPOSE", "9108") in instr


def test_docker_image_builds():
    docker = need("docker")
    if run(docker, "info").returncode != 0:
        pytest.skip("no docker daemon")
    out = run(docker, "build", "-q", "-t", "hallmon:test", str(ROOT), timeout=600)
    assert out.returncode == 0, out.stderr


# --- systemd -----------------------------------------------------------------------------

def unit_for_this_machine(tmp_path: Path) -> Path:
    text = (DEPLOY / "systemd" / "hallmon.service").read_text()
    unit = tmp_path / "hallmon.service"
    unit.write_text(text.replace("/opt/hallmon/.venv/bin/hallmon", str(Path(sys.executable).parent / "hallmon")))
    return unit


def test_systemd_unit_verifies_and_is_hardened(tmp_path):
    tool = need("systemd-analyze")
    unit = unit_for_this_machine(tmp_path)
    out = run(tool, "verify", str(unit))
    assert out.returncode == 0 and out.stderr.strip() == "", out.stderr
    out = run(tool, "security", "--offline=true", str(unit))
    m = re.search(r"Overall exposure level for hallmon.service: ([\d.]+)", out.stdout)
    assert m, out.stdout[-500:] + out.stderr
    assert float(m.group(1)) <= 2.0, out.stdout  # systemd calls under 2 "OK"
    text = unit.read_text()
    for key in ("NoNewPrivileges=yes", "ProtectSystem=strict", "User=hallmon", "--shard ${HALLMON_SHARD}",
                "ExecReload=/bin/kill -HUP $MAINPID"):
        assert key in text


# --- Kubernetes --------------------------------------------------------------------------

def test_kubernetes_manifests_are_in_sync_with_their_sources():
    out = run(sys.executable, str(K8S / "build.py"), "--check", cwd=ROOT)
    assert out.returncode == 0, out.stderr


def test_kubernetes_build_check_notices_a_stale_prometheusrule(tmp_path):
    """--check is not vacuous: an edit the sources do not explain fails it."""
    build = [sys.executable, str(K8S / "build.py"), "--dir", str(tmp_path)]
    assert run(*build).returncode == 0
    assert run(*build, "--check").returncode == 0
    rule = tmp_path / "prometheusrule.yaml"
    rule.write_text(rule.read_text().replace("> 2", "> 3"))
    out = run(*build, "--check")
    assert out.returncode == 1 and "prometheusrule.yaml" in out.stderr


def test_kubernetes_manifests_fields_that_matter():
    objs = [d for p in sorted(K8S.glob("*.yaml")) for d in docs(p)]
    by_kind: dict[str, list[dict]] = {}
    for o in objs:
        by_kind.setdefault(o["kind"], []).append(o)
    deployments = by_kind["Deployment"]
    shards = sorted(d["spec"]["template"]["spec"]["containers"][0]["args"][-1] for d in deployments)
    assert shards == [f"{i}/{len(deployments)}" for i in range(len(deployments))]
    service = by_kind["Service"][0]
    monitor = by_kind["ServiceMonitor"][0]
    for d in deployments:
        spec = d["spec"]
        assert spec["replicas"] == 1  # two pods of one shard would check its targets twice
        pod_labels = spec["template"]["metadata"]["labels"]
        assert spec["selector"]["matchLabels"].items() <= pod_labels.items()
        assert service["spec"]["selector"].items() <= pod_labels.items()
        pod = spec["template"]["spec"]
        c = pod["containers"][0]
        assert c["args"][:3] == ["run", "-c", "/etc/hallmon/hallmon.yml"] and "--shard" in c["args"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert c["securityContext"]["readOnlyRootFilesystem"] is True
        assert c["securityContext"]["allowPrivilegeEscalation"] is False
        assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
        vols = {v["name"]: v for v in pod["volumes"]}
        assert vols["config"]["configMap"]["name"] == by_kind["ConfigMap"][0]["metadata"]["name"]
        # a reference to a Secret the operator creates; its keys are the files the config reads
        assert {i["key"] for i in vols["secrets"]["secret"]["items"]} == set(SECRETS)
        assert "Secret" not in by_kind
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert monitor["spec"]["endpoints"][0]["port"] == service["spec"]["ports"][0]["name"]
    rule = by_kind["PrometheusRule"][0]
    source = yaml.safe_load((ROOT / "alertrules" / "hallmon.rules.yml").read_text())
    assert rule["spec"]["groups"] == source["groups"]
    config = yaml.safe_load(by_kind["ConfigMap"][0]["data"]["hallmon.yml"])
    assert config["service"]["listen"].startswith("0.0.0.0:")
