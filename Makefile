# Two commands: `make demo` and `make test`. Each creates .venv if missing, installs
# torch==2.13.0 first (a CPU build on the project's machines; pinning it before the
# project keeps pip from resolving some other, multi-GB torch), then the project with
# its dev extra.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.fedseed-installed
export HF_HUB_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
# Machines of the project's kind (and many Docker images) set PYTHONDONTWRITEBYTECODE=1.
# With pip's --no-compile below, that would leave torch, transformers and flwr without
# bytecode, so every process the suite starts (CLI runs, SuperLinks, Ray workers)
# recompiled them from source: CI went from 674 s to 2,235 s. Unset, the first import of
# each module writes its .pyc and later processes reuse it; only modules that are
# actually imported get compiled, which is cheaper than byte-compiling all of them.
unexport PYTHONDONTWRITEBYTECODE

.PHONY: demo test test-busy bench bench-setup lint clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --no-compile --disable-pip-version-check torch==2.13.0
	$(BIN)/python -m pip install --quiet --no-compile --disable-pip-version-check -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/fedseed demo

# The suite is CPU-bound (real processes, real training): one pytest-xdist worker per
# core, at most 4, each module whole on one worker (--dist loadfile) so that a module's
# shared federation or deployment starts once. The 15 slowest tests are printed at the
# end: anyone can see where the time goes.
PYTEST := $(BIN)/python -m pytest -q -n auto --maxprocesses=4 --dist loadfile --durations=15

# Lint first (a second), then the suite, with mypy (half a minute on a fresh clone)
# checking types beside it; either failing fails the target.
test: $(STAMP)
	$(BIN)/ruff check fedseed tests
	bash -c '$(BIN)/mypy fedseed > $(VENV)/mypy.log 2>&1 & types=$$!; $(PYTEST); suite=$$?; \
	  wait $$types; checked=$$?; cat $(VENV)/mypy.log; exit $$(( suite || checked ))'

# The suite with every core kept busy by a CPU hog (a slow, cold machine): it must stay
# green, since no test outcome may depend on machine speed (docs/development.md). The
# hogs run at nice 15, as Ray runs its workers: a hog at nice 0 gets ~98% of a core
# against a nice-15 ClientApp, which then crawls for an hour instead of sharing the core.
test-busy: $(STAMP)
	bash -c 'hogs=""; for i in $$(seq $$(nproc)); do \
	  nice -n 15 $(PYTHON) -c "while True: pass" & hogs="$$hogs $$!"; done; \
	  trap "kill $$hogs" EXIT; $(PYTEST)'

# The personalization benchmark reads Debian's `fortunes` (one user per category);
# install it if missing (needs root or sudo; elsewhere install it by hand).
FORTUNES := /usr/share/games/fortunes

bench-setup:
	@test -d $(FORTUNES) || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq fortunes; \
	  elif command -v sudo >/dev/null; then sudo apt-get update -qq && sudo apt-get install -y -qq fortunes; \
	  else echo "bench: $(FORTUNES) is missing; install Debian's 'fortunes' package" >&2; exit 2; fi; }
	@command -v bible >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq bible-kjv; \
	  elif command -v sudo >/dev/null; then sudo apt-get update -qq && sudo apt-get install -y -qq bible-kjv; \
	  else echo "bench: the 'bible' program is missing; install Debian's 'bible-kjv' package" >&2; exit 2; fi; }

bench: $(STAMP) bench-setup
	$(BIN)/fedseed bench overhead --out docs/results
	$(BIN)/fedseed bench provenance --out docs/results
	$(BIN)/fedseed bench trajectory --out docs/results
	$(BIN)/fedseed bench trajectory --first-order --out docs/results
	$(BIN)/fedseed bench personalization --out docs/results
	$(BIN)/fedseed bench robustness --out docs/results
	$(BIN)/fedseed bench pretrained-base --out docs/results
	$(BIN)/fedseed bench text --out docs/results
	$(BIN)/fedseed bench budget --out docs/results
	$(BIN)/fedseed bench bandwidth --out docs/results
	$(BIN)/fedseed bench seed-claims --out docs/results
	$(BIN)/fedseed bench multi-task --out docs/results
	$(BIN)/fedseed bench privacy --out docs/results

lint: $(STAMP)
	$(BIN)/ruff check fedseed tests
	$(BIN)/mypy fedseed

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
