"""docs/plan-coverage.md's table "plan → what hallmon does, article by article" is the generator's
output over the built-in plans (issue 13, Show it), so it cannot drift from the plans."""
import importlib.util
import subprocess
import sys

from monitor.plans.coverage import entries, markdown
from monitor.plans.model import builtin_ids, load_plan
from tests.conftest import ROOT


def _script():
    spec = importlib.util.spec_from_file_location("coverage_table", ROOT / "scripts" / "coverage_table.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_readme_table_is_the_generators_output():
    script = _script()
    readme = (ROOT / "docs" / "plan-coverage.md").read_text(encoding="utf-8")
    assert script.in_readme(readme) == script.table(), "docs/plan-coverage.md drifted: run python scripts/coverage_table.py --write"
    printed = subprocess.run([sys.executable, "scripts/coverage_table.py"], cwd=ROOT, capture_output=True,
                             text=True, timeout=60)
    assert printed.returncode == 0 and printed.stdout == script.table()


def test_the_table_has_every_plans_own_articles_and_what_it_leaves_to_people():
    text = _script().table()
    for plan_id in builtin_ids():
        plan = load_plan(plan_id)
        own = plan_id.split("-")[0].capitalize()
        rows = [e for e in entries(plan) if plan_id == "default" or e.article.startswith(own + " ")]
        assert rows, plan_id
        for e in rows:
            assert f"{e.element}: {e.does}".replace("|", "\\|") in text, (plan_id, e)
        for item in plan.articles:
            if item.by == "people":
                assert f"left to people: {item.what}" in text, (plan_id, item.source)
    # Xiamen 3(2)2 names the copy (办公室) as well as the departments reported to
    assert "faults system.*: runbook; reports to 信息分局, 征管处 cc 办公室" in text


def test_a_changed_plan_changes_the_table():
    plan = load_plan("xiamen-tax")
    changed = plan.model_copy(update={"clocks": plan.clocks[1:]})
    assert markdown([plan]) != markdown([changed])
