# The template's two commands: `make demo` and `make test`. Both install uv when it is missing.
.DEFAULT_GOAL := help
UV := $(shell command -v uv 2>/dev/null || echo "$(HOME)/.local/bin/uv")
# The tests and the projects they bake find the same uv, even where its folder is not on PATH.
export PATH := $(patsubst %/,%,$(dir $(UV))):$(PATH)
# Installs compile bytecode (--compile-bytecode), once. Where UV_COMPILE_BYTECODE is set, every `uv run` here
# and in the baked projects would compile all ~15,000 installed files again (~1 s a call).
export UV_COMPILE_BYTECODE := 0
DEMO := build/demo
# Two workers (the machine CI runs on has two cores); each module's e2e tests stay together, and the workers
# take them in the order tests/conftest.py gives (xdist would otherwise reorder them by their number of tests).
PARALLEL := -n 2 --dist loadgroup --no-loadscope-reorder

.PHONY: help demo test test-fast test-lint test-e2e bench clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

$(UV):
	python3 -m pip install --user --quiet uv || python3 -m pip install --user --quiet --break-system-packages uv

.venv: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --compile-bytecode
	@touch .venv

demo: .venv ## Bake the template with defaults into build/demo and run the project end to end
	rm -rf $(DEMO) && mkdir -p $(DEMO)
	$(UV) run --frozen cookiecutter --no-input . -o $(DEMO)
	$(MAKE) -C $(DEMO)/credit-risk setup pipeline test gate register
	$(MAKE) -C $(DEMO)/credit-risk promote ENV=staging reconcile
	@echo "Demo project: $(DEMO)/credit-risk (release pin: deploy/staging.yaml)"

test: .venv ## Run every test tier: fast, lint and e2e
	$(UV) run --frozen pytest $(PARALLEL)

test-fast: .venv ## Only the fast tier
	$(UV) run --frozen pytest -m fast

test-lint: .venv ## Only the lint tier
	$(UV) run --frozen pytest -m lint

test-e2e: .venv ## Only the end-to-end tier
	$(UV) run --frozen pytest -m e2e $(PARALLEL)

bench: .venv ## Print the performance figures
	$(UV) run --frozen python benchmarks/bench_foundation.py

clean: ## Remove demo bakes and caches
	rm -rf build .pytest_cache .ruff_cache
