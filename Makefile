# One entry point for building, testing, demonstrating and benchmarking the add-on.
# Every target creates its own virtualenv (.venv) on first use.

# Building and testing need Python 3.11 to 3.13 (the pinned test tools need 3.11+, ucc-gen 6.6 needs < 3.14);
# the add-on itself runs on Splunk's own Python (3.9 in Splunk 9.x, 3.13 in 10.x). PYTHON=/path/to/python3.12
# chooses one; otherwise the first of python3, python3.13, python3.12, python3.11 on PATH that fits is taken.
SUPPORTED := import sys; sys.exit(not (3, 11) <= sys.version_info[:2] <= (3, 13))
PYTHON ?= $(firstword $(foreach p,python3 python3.13 python3.12 python3.11,$(shell command -v $(p) >/dev/null 2>&1 && $(p) -c '$(SUPPORTED)' 2>/dev/null && echo $(p))))
VENV := .venv
ADDON := TA_aws_cloudtrail
VERSION := $(shell python3 -c 'import json; print(json.load(open("globalConfig.json"))["meta"]["version"])' 2>/dev/null)
PKG := dist/$(ADDON)-$(VERSION).tar.gz
KILLS ?= 50
# ucc-gen installs lib/ with the first "python3" on PATH: make that the venv's.
export PATH := $(abspath $(VENV))/bin:$(PATH)

.PHONY: check-python venv build package appinspect test test-fast lint demo bench profile crash-test browser ui clean

check-python:
	@if [ -z "$(PYTHON)" ] || ! "$(PYTHON)" -c '$(SUPPORTED)' 2>/dev/null; then \
		echo "Building and testing need Python 3.11 to 3.13; found $$($(or $(PYTHON),python3) --version 2>&1) at $(or $(PYTHON),python3). Install one and run: make PYTHON=/path/to/python3.12 <target>" >&2; \
		exit 2; fi

$(VENV)/.installed: requirements-dev.txt
	@$(MAKE) --no-print-directory check-python PYTHON="$(PYTHON)"
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q "pip==25.3"
	$(VENV)/bin/python -m pip install -q -r requirements-dev.txt
	touch $@

venv: $(VENV)/.installed

# --pip-version 25.3: ucc-gen's default pip upgrade (26.x) breaks its splunktaucclib check.
build: venv
	@echo "==> build (ucc-gen)"
	rm -rf output
	ucc-gen build --source package --config globalConfig.json --ta-version $(VERSION) --pip-version 25.3

package: build
	mkdir -p dist
	rm -f $(PKG)
	ucc-gen package --path output/$(ADDON) -o dist
	@echo "Package: $(PKG)"

appinspect: package
	python scripts/appinspect_gate.py $(PKG)

lint: venv
	@echo "==> lint (ruff)"
	ruff check .
	ruff format --check .

# The browser tests drive Debian's Chromium through chromedriver (nothing is downloaded at run time).
browser:
	@if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "==> installing chromium and chromium-driver (apt-get)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; \
	else echo "The browser tests need chromium and chromedriver: sudo apt-get install chromium chromium-driver" >&2; exit 2; fi

# The whole suite: lint, build + package, then the tests with a line per test file (unit, packaging with the
# AppInspect gate, integration with the browser tests). About 25-28 minutes on 2 cores (26-34 from a fresh clone).
test: lint package browser
	@echo "==> tests: unit, packaging + AppInspect gate, integration (one line per file)"
	python -m pytest tests

# Unit tests only (no build needed), about 2 minutes.
test-fast: venv
	python -m pytest tests/unit

demo: package
	python scripts/demo.py

# The configuration pages in your browser: Splunk Web stand-in, splunkd emulator and moto, with demo data.
ui: package
	python scripts/ui.py

bench: package
	python scripts/bench.py

# Where the SQS input's CPU goes (py-spy over all its threads; py-spy is installed into .venv, not a test dependency).
profile: package
	python -m pip install -q py-spy
	python scripts/profile_input.py

# The kill -9 test with more kills than the suite's (make crash-test KILLS=50: about 7 minutes).
crash-test: package
	python scripts/crash_test.py --kills $(KILLS)

clean:
	rm -rf output dist .pytest_cache .demo
