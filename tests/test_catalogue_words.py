"""Words a person reads come from one catalogue (issue 22 items 5 and 7): every category any
built-in plan can give an incident has its words, a page names it in them (0.6's pages for
`monitoring` and `disputes` incidents said "other"), and a level set by hand cites its own
plan's article (0.6 cited Shenzhen 5.1.2 whatever the plan)."""
from __future__ import annotations

import pytest

from monitor.core.faultnames import CATEGORIES, category_name
from monitor.durable.events import Headline
from monitor.paging.messages import render
from monitor.plans.model import builtin_ids, load_plan

PLANS = builtin_ids()


@pytest.mark.parametrize("plan_id", PLANS)
def test_every_category_of_every_plan_has_words_in_both_languages(plan_id):
    for category in load_plan(plan_id).categories:
        assert category.id in CATEGORIES, (plan_id, category.id)
        assert category_name(category.id, "zh") != category_name(category.id, "en")


@pytest.mark.parametrize("category", ["monitoring", "disputes", "storm", "pos"])
@pytest.mark.parametrize("lang", ["zh", "en"])
def test_a_page_names_the_category_in_the_catalogues_words(category, lang):
    head = Headline(id="INC-20261207-0001", level=2, level_name="二级", category=category, sites=("u1a",),
                    units=("u1",), detected_at="2026-12-07T09:00:00+08:00")
    title = render("page", lang, head).title
    assert category_name(category, lang) in title, title
    assert "其他" not in title and "other" not in title.lower()


EXPECTED = {"shenzhen-customs": "Shenzhen 5.1.2", "guizhou-tax": "Guizhou part 3", "xiamen-tax": "Xiamen 3(3)"}


@pytest.mark.parametrize("plan_id", PLANS)
def test_a_level_set_by_hand_cites_its_own_plan(plan_id):
    source = load_plan(plan_id).manual_level_source
    assert source == EXPECTED.get(plan_id, f"{plan_id}: set by a person (the plan names no article)")
    if plan_id != "shenzhen-customs":
        assert "Shenzhen" not in source
