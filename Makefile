# Two entry points for a fresh machine; both set themselves up first.
.PHONY: demo test lint bench setup

setup:
	@bash scripts/bootstrap.sh

demo: setup
	.venv/bin/python -m shared demo

lint: setup
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/lint-imports
	CKV_SKIP_PACKAGE_UPDATE_CHECK=true .venv/bin/checkov --directory infra --framework bicep --skip-download --compact --quiet

test: lint
	.venv/bin/python -m pytest -q

bench: setup
	.venv/bin/python -m bench
