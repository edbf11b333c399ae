# The README's two commands: `make demo` and `make test`.
PY := .venv/bin/python

.PHONY: demo test bench setup chaos
demo:
	bash scripts/setup.sh demo
	.venv/bin/hallmon demo

test:
	bash scripts/setup.sh test
	bash scripts/test.sh

bench:
	bash scripts/setup.sh test
	$(PY) -m bench.metrics && $(PY) -m bench.scheduler --duration 60 && $(PY) -m bench.probe_cost
	$(PY) -m bench.e2e
	$(PY) -m bench.console

chaos:
	bash scripts/setup.sh test
	HALLMON_CHAOS=long .venv/bin/pytest -q -s -m chaos tests/test_chaos.py
