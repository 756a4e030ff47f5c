# switchboard — the README's two commands: `make demo` and `make test`.
# Both create .venv and install the project with its extras on first use; later runs only
# reinstall when pyproject.toml changes.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
EXTRAS ?= dev,postgres,local,otel,codecs,cluster
PYTEST_ARGS ?=
FUZZ_SECONDS ?= 20

.PHONY: demo test lint typecheck unit suite cluster serve bench soak clean fuzz

$(STAMP): pyproject.toml setup.py src/switchboard/audio/_g711.c src/switchboard/audio/_fir.c
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[$(EXTRAS)]'
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/switchboard demo

serve: $(STAMP)
	$(BIN)/switchboard serve

lint: $(STAMP)
	$(BIN)/ruff check src tests bench examples fuzz
	$(BIN)/ruff format --check src tests bench examples fuzz

typecheck: $(STAMP)
	$(BIN)/mypy --strict src tests bench examples fuzz

# The quick tier: no end-to-end calls, browsers, soaks, multi-process clusters or slow tests.
QUICK := not e2e and not browser and not soak and not cluster and not slow

unit: $(STAMP)
	$(BIN)/pytest -W error -m '$(QUICK)' $(PYTEST_ARGS)

# Every tier (what CI runs through `make test`), in two parts: the tests that do not measure
# time spread over JOBS pytest-xdist workers (most of the suite waits on real-time audio, not
# the CPU), then the `serial` ones alone (tests/conftest.py says why).
JOBS ?= 3
suite: $(STAMP)
	$(BIN)/pytest -W error -n $(JOBS) --dist loadgroup -m 'not serial' $(PYTEST_ARGS)
	$(BIN)/pytest -W error -m serial $(PYTEST_ARGS)

test: lint typecheck suite

# Only the multi-node tier: `switchboard serve` nodes behind HAProxy, on Redis (tests/cluster/).
cluster: $(STAMP)
	$(BIN)/pytest -W error -m cluster $(PYTEST_ARGS)

# Coverage-guided fuzzing of the parsers (atheris): FUZZ_SECONDS per target; crashes fail it.
fuzz: $(STAMP)
	$(BIN)/python -m fuzz.run $(FUZZ_SECONDS)

bench: $(STAMP)
	$(BIN)/python bench/audio.py

# The long soak (100 calls x 15 min, ~16 min); `make test` runs the short one (40 x 60 s).
soak: $(STAMP)
	$(BIN)/python bench/soak.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
