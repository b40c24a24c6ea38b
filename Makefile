# The two commands of the README. Both install what is missing first, and are safe to run again.
.PHONY: demo test bench loadtest

demo:  ## install everything, then run the demo (portal on http://localhost:3000; FRONTEND_PORT moves it)
	scripts/setup.sh --demo
	.venv/bin/veles demo

test:  ## install everything, then lint, type-check and run the whole test suite
	scripts/setup.sh --test
	scripts/test.sh

bench:  ## benchmarks that print numbers (not part of the tests)
	scripts/setup.sh
	.venv/bin/veles bench risk

loadtest:  ## the standard Locust mix against a demo on PostgreSQL + Redis; verdicts, CSV and HTML in .veles/loadtests
	scripts/setup.sh
	scripts/services.sh
	.venv/bin/veles bench load $(LOADTEST_ARGS)
