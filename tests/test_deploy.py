"""alertrules/ and deploy/ checked by the real tools (promtool, amtool) and by the fields
that matter in what no tool here can run (Kubernetes, docker compose, systemd)."""
import configparser
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
PROMTOOL = shutil.which("promtool")
AMTOOL = shutil.which("amtool")
needs_promtool = pytest.mark.skipif(PROMTOOL is None, reason="promtool missing: scripts/setup.sh test")


@needs_promtool
def test_rules_check_and_unit_tests_pass():
    res = subprocess.run([PROMTOOL, "check", "rules", str(ROOT / "alertrules/hallmon.rules.yml")],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr
    res = subprocess.run([PROMTOOL, "test", "rules", "hallmon_test.yml"], cwd=ROOT / "tests/alertrules",
                         capture_output=True, text=True)
    assert res.returncode == 0 and "SUCCESS" in res.stdout, res.stdout + res.stderr


def test_every_alert_has_a_promtool_test_firing_and_not_firing():
    rules = yaml.safe_load((ROOT / "alertrules/hallmon.rules.yml").read_text())
    alerts = {r["alert"] for g in rules["groups"] for r in g["rules"] if "alert" in r}
    tests = yaml.safe_load((ROOT / "tests/alertrules/hallmon_test.yml").read_text())
    cases = [c for t in tests["tests"] for c in t.get("alert_rule_test", [])]
    firing = {c["alertname"] for c in cases if c["exp_alerts"]}
    quiet = {c["alertname"] for c in cases if not c["exp_alerts"]}
    assert alerts <= firing, alerts - firing
    assert alerts - {"Watchdog"} <= quiet, (alerts - {"Watchdog"}) - quiet  # the watchdog never stops
    for g in rules["groups"]:
        for r in g["rules"]:
            if "alert" in r and r["labels"].get("hallmon_meta") != "true" and r["alert"] != "HallmonFaultActive":
                assert "fault" in r["labels"], r["alert"]  # the router classifies by it
            if "alert" in r:
                assert re.search(r"[\u4e00-\u9fff]", r["annotations"]["summary"]), r["alert"]  # zh summary


@needs_promtool
def test_prometheus_config_checks(tmp_path):
    cfg = yaml.safe_load((ROOT / "deploy/prometheus.yml").read_text())
    cfg["rule_files"] = [str(ROOT / "alertrules/*.yml")]  # where the container mounts them
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(cfg))
    res = subprocess.run([PROMTOOL, "check", "config", str(path)], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "13 rules found" in res.stdout
    assert cfg["scrape_configs"][0]["job_name"] == "hallmon"  # HallmonDown matches up{job="hallmon"}


@pytest.mark.skipif(AMTOOL is None, reason="amtool missing: scripts/setup.sh test")
def test_alertmanager_config_checks_and_routes(tmp_path):
    text = (ROOT / "deploy/alertmanager.yml").read_text()
    token = tmp_path / "token"
    token.write_text("x")
    path = tmp_path / "alertmanager.yml"
    path.write_text(text.replace("/etc/alertmanager/hallmon-token", str(token)))
    res = subprocess.run([AMTOOL, "check-config", str(path)], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr

    def route(*labels):
        out = subprocess.run([AMTOOL, "config", "routes", "test", f"--config.file={path}", *labels],
                             capture_output=True, text=True)
        return out.stdout.strip()
    assert route("fault=power.on_battery", "site=hall") == "hallmon"
    assert route("alertname=HallmonDown", "hallmon_meta=true") == "operators"
    assert route("alertname=Watchdog", "hallmon_meta=true") == "deadmans-switch"
    cfg = yaml.safe_load(text)
    hook = cfg["receivers"][0]["webhook_configs"][0]
    assert hook["url"].endswith("/api/v1/alerts/alertmanager") and "credentials_file" in hook["http_config"]["authorization"]


def test_kubernetes_manifests_have_what_matters():
    docs = list(yaml.safe_load_all((ROOT / "deploy/k8s/hallmon.yaml").read_text()))
    kinds = {}
    for d in docs:
        kinds.setdefault(d["kind"], []).append(d)
    shards = []
    for dep in kinds["Deployment"]:
        container = dep["spec"]["template"]["spec"]["containers"][0]
        args = container["args"]
        shards.append(args[args.index("--shard") + 1])
        assert container["envFrom"][0]["secretRef"]["name"] == "hallmon-secrets"
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert dep["spec"]["selector"]["matchLabels"].items() <= dep["spec"]["template"]["metadata"]["labels"].items()
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
    n = len(shards)
    assert sorted(shards) == [f"{i}/{n}" for i in range(n)]  # every shard exactly once
    assert kinds["Service"][0]["spec"]["selector"] == {"app": "hallmon"}
    assert kinds["ServiceMonitor"][0]["spec"]["endpoints"][0]["path"] == "/metrics"
    config = yaml.safe_load(kinds["ConfigMap"][0]["data"]["hallmon.yml"])
    assert config["service"]["listen"].startswith("0.0.0.0:")


def test_config_in_the_configmap_is_valid(tmp_path, monkeypatch):
    from monitor.config import load_config
    for name in ("HALLMON_LINK_SECRET", "HALLMON_WEBHOOK_TOKEN", "HALLMON_OPS_TOKEN"):
        monkeypatch.setenv(name, "x" * 32)
    doc = next(d for d in yaml.safe_load_all((ROOT / "deploy/k8s/hallmon.yaml").read_text()) if d["kind"] == "ConfigMap")
    path = tmp_path / "hallmon.yml"
    path.write_text(doc["data"]["hallmon.yml"])
    assert load_config(path).targets


def test_prometheusrule_is_generated_from_alertrules():
    import importlib.util
    spec = importlib.util.spec_from_file_location("build", ROOT / "deploy/k8s/build_prometheusrule.py")
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    assert (ROOT / "deploy/k8s/prometheusrule.yaml").read_text() == build.build(), \
        "run python deploy/k8s/build_prometheusrule.py"


def test_compose_dockerfile_and_systemd_unit():
    compose = yaml.safe_load((ROOT / "deploy/docker-compose.yml").read_text())
    services = compose["services"]
    assert {"hallmon", "redis", "prometheus", "alertmanager", "grafana"} <= set(services)
    assert "--appendonly" in services["redis"]["command"]
    for svc in services.values():
        for volume in svc.get("volumes", []):
            src = volume.split(":")[0]
            if src.startswith("."):
                assert (ROOT / "deploy" / src).resolve().exists() or src.endswith(("hallmon.yml", "secrets",
                                                                                     "hallmon-token")), src
    dockerfile = (ROOT / "deploy/Dockerfile").read_text()
    assert dockerfile.startswith("# hallmon") and re.search(r"^FROM python:3\.11", dockerfile, re.M)
    assert re.search(r"^USER hallmon$", dockerfile, re.M) and "ENTRYPOINT [\"hallmon\"" in dockerfile
    for src in re.findall(r"^COPY (\S+)", dockerfile, re.M):
        assert (ROOT / src).exists(), src
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.read_string((ROOT / "deploy/systemd/hallmon.service").read_text())
    service = unit["Service"]
    assert "hallmon" in service["ExecStart"] and " run -c " in service["ExecStart"]
    assert service["ExecReload"] == "/bin/kill -HUP $MAINPID"
    for key, value in (("NoNewPrivileges", "yes"), ("ProtectSystem", "strict"), ("PrivateTmp", "yes"),
                       ("User", "hallmon")):
        assert service[key] == value
