#!/usr/bin/env bash
# Runs the whole test suite. Fails when a test fails, and when no test ran at all.
set -uo pipefail
cd "$(dirname "$0")/.."
.venv/bin/ruff check . || { echo "test.sh: ruff check failed" >&2; exit 1; }
.venv/bin/mypy monitor probes || { echo "test.sh: mypy failed" >&2; exit 1; }
.venv/bin/python -m pytest -n 2 --durations=15 "$@"
rc=$?
if [ $rc -eq 5 ]; then
  echo "test.sh: pytest collected no tests: failing" >&2
  exit 1
fi
exit $rc
