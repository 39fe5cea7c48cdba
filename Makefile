# One entry point for building, testing, demonstrating and benchmarking the add-on.
# Every target creates its own virtualenv (.venv) on first use.

PYTHON ?= python3
VENV := .venv
ADDON := TA_aws_cloudtrail
VERSION := $(shell $(PYTHON) -c 'import json; print(json.load(open("globalConfig.json"))["meta"]["version"])')
PKG := dist/$(ADDON)-$(VERSION).tar.gz
# ucc-gen installs lib/ with the first "python3" on PATH: make that the venv's.
export PATH := $(abspath $(VENV))/bin:$(PATH)

.PHONY: venv build package appinspect test test-fast lint demo bench clean

$(VENV)/.installed: requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q "pip==25.3"
	$(VENV)/bin/python -m pip install -q -r requirements-dev.txt
	touch $@

venv: $(VENV)/.installed

# --pip-version 25.3: ucc-gen's default pip upgrade (26.x) breaks its splunktaucclib check.
build: venv
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
	ruff check .
	ruff format --check .

# The whole suite: lint, build + package, AppInspect gate, unit and integration tests.
test: lint package
	python -m pytest -q tests

# Unit tests only (no build needed).
test-fast: venv
	python -m pytest -q tests/unit

demo: package
	python scripts/demo.py

bench: package
	python scripts/bench.py

clean:
	rm -rf output dist .pytest_cache
