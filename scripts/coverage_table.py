"""Print, or with ``--write`` put into docs/plan-coverage.md, the table "plan → what hallmon does,
article by article", generated from the built-in plans' coverage (the data behind
``hallmon plan show NAME --coverage``), so that page cannot drift from the plans.
tests/test_coverage_readme.py fails when its table differs from this output."""
from __future__ import annotations

import sys
from pathlib import Path

from monitor.plans.coverage import markdown
from monitor.plans.model import builtin_ids, load_plan

README = Path(__file__).resolve().parent.parent / "docs" / "plan-coverage.md"
START, END = "<!-- coverage table: scripts/coverage_table.py --write -->\n", "<!-- end of coverage table -->\n"


def table() -> str:
    ids = sorted(builtin_ids(), key=lambda p: (p == "default", p))  # the base last
    return markdown([load_plan(p) for p in ids])


def in_readme(text: str) -> str:
    """The generated block as docs/plan-coverage.md has it."""
    return text.split(START, 1)[1].split(END, 1)[0]


def main() -> int:
    if sys.argv[1:] == ["--write"]:
        text = README.read_text(encoding="utf-8")
        before, rest = text.split(START, 1)
        README.write_text(before + START + table() + END + rest.split(END, 1)[1], encoding="utf-8")
    else:
        sys.stdout.write(table())
    return 0


if __name__ == "__main__":
    sys.exit(main())
