# Two commands on a fresh machine: `make demo` and `make test`. Each sets up .venv when it is
# missing or older than pyproject.toml, so a second run starts at once.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint types pytest docs bench clean

# .ci/constraints.txt pins the versions the suite was last run with, so that a new release
# upstream cannot break a clean checkout; raise them deliberately, in a commit of their own.
$(STAMP): pyproject.toml .ci/constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c .ci/constraints.txt -e '.[dev,docs]'
	# torch is optional: the float64 NumPy references are the primary oracle, torch a second one.
	-$(BIN)/python -m pip install -q 'torch==2.13.0' || echo "torch==2.13.0 not available: torch comparisons will be skipped"
	touch $(STAMP)

# The demo needs only the `demo` extra: on a fresh clone that installs in about half the time of the full set-up,
# and a .venv already set up for `make test` (a $(STAMP) newer than the inputs) is used as it is.
DEMO_STAMP := $(VENV)/.installed-demo
$(DEMO_STAMP): pyproject.toml .ci/constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	test -f $(STAMP) -a $(STAMP) -nt pyproject.toml -a $(STAMP) -nt .ci/constraints.txt || \
		$(BIN)/python -m pip install -q -c .ci/constraints.txt -e '.[demo]'
	touch $(DEMO_STAMP)

demo: $(DEMO_STAMP)
	$(BIN)/python examples/train_digits.py

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

types: $(STAMP)
	$(BIN)/pyright

pytest: $(STAMP)
	$(BIN)/python -m pytest -q

# The docs site, built as CI builds it: --strict fails on a broken link, a nav entry to a missing page, or an
# API-reference block that does not render. The pages are written to a temporary folder and discarded.
docs: $(STAMP)
	out=$$(mktemp -d) && NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet --site-dir "$$out"; \
		rc=$$?; rm -rf "$$out"; exit $$rc

test: lint types pytest docs

# gradtx against optax in one process (a few minutes); writes bench/results/latest.{json,md,png}.
# `python -m bench --quick` runs tiny cases in seconds, to check that it works; bench/gpu.sh is the run for a GPU.
bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) build dist *.egg-info
