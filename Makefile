# m365ops.smtp_auth: set up, test, build and demo from a fresh clone.
#
#   make demo    set up, start the local Microsoft 365 emulator and run the playbooks against it
#   make test    set up, then run every test stage in order, stopping at the first failure
#
# Virtualenvs: .venv (python3, ansible-core 2.19) and, when a Python 3.12 interpreter is found,
# .venv312 (ansible-core 2.21). They are only reinstalled when a requirements file changes.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-builtin-rules --no-print-directory

PYTHON ?= python3
PYTHON312 ?= $(shell scripts/find-python.sh 3.12)

VENV := .venv
VENV312 := .venv312
ANSIBLE_CORE := ansible-core>=2.19,<2.20
ANSIBLE_CORE312 := ansible-core>=2.21,<2.22

NAMESPACE := m365ops
NAME := smtp_auth
VERSION := $(shell sed -n 's/^version: *//p' galaxy.yml)
TARBALL := .build/dist/$(NAMESPACE)-$(NAME)-$(VERSION).tar.gz

# The collection is imported as ansible_collections.m365ops.smtp_auth from a symlink to this checkout,
# so tests, playbooks and the demo always run the working tree without an install step.
COLLECTIONS := $(CURDIR)/.build/collections
COLLECTION_LINK := $(COLLECTIONS)/ansible_collections/$(NAMESPACE)/$(NAME)

# What pytest, ansible-playbook and the demo see. Sanity and the build check set their own environment
# on purpose: they must look at the shipped copy, not at this link.
dev_env = PATH="$(CURDIR)/$(1)/bin:$$PATH" VIRTUAL_ENV="$(CURDIR)/$(1)" \
	ANSIBLE_COLLECTIONS_PATH="$(COLLECTIONS)" PYTHONPATH="$(COLLECTIONS)"

REQUIREMENTS := requirements.txt test-requirements.txt \
	$(wildcard emulator/pyproject.toml emulator/setup.cfg emulator/setup.py) \
	scripts/setup.sh scripts/ansible-test-pip.sh scripts/get_pip_standin.py

PYTEST_LOGS := tests/output/pytest
stage = printf '\n\033[1m==> %s\033[0m  (%s)\n' "$(1)" "$$(date +%T)"

.PHONY: help venv link test demo emulator-tests unit integration sanity sanity-2.19 sanity-2.21 \
	lint molecule build tarball summary benchmark clean

help:
	@echo "make demo          set up, then show the collection fixing SMTP AUTH on the local emulator"
	@echo "make test          set up, then run every test stage (stops at the first failure)"
	@echo "make venv          create/update .venv (ansible-core 2.19) and .venv312 (ansible-core 2.21)"
	@echo "make emulator-tests | unit | integration | sanity | lint | molecule | build"
	@echo "make benchmark     bulk reads, then role runs (drift, apply, per-mailbox loop), on a large emulated tenant"
	@echo "make clean         remove virtualenvs, build output and test output"

# ---------------------------------------------------------------------------------------------- setup

$(VENV)/.installed: $(REQUIREMENTS)
	@$(call stage,setup: $(VENV) with $(ANSIBLE_CORE))
	bash scripts/setup.sh $(VENV) "$(PYTHON)" '$(ANSIBLE_CORE)'
	@touch $@

$(VENV312)/.installed: $(REQUIREMENTS)
	@$(call stage,setup: $(VENV312) with $(ANSIBLE_CORE312))
	bash scripts/setup.sh $(VENV312) "$(PYTHON312)" '$(ANSIBLE_CORE312)'
	@touch $@

link:
	@if [ ! -L "$(COLLECTION_LINK)" ]; then \
		mkdir -p "$(dir $(COLLECTION_LINK))"; \
		ln -sfn ../../../.. "$(COLLECTION_LINK)"; \
	fi

venv: $(VENV)/.installed $(if $(PYTHON312),$(VENV312)/.installed) link
ifeq ($(PYTHON312),)
	@echo "venv: no Python 3.12 interpreter found; the ansible-core 2.21 stages will be skipped"
endif

# ---------------------------------------------------------------------------------------------- test

# The stages run one after the other, in this order, and the first failure stops `make test`.
test:
	@rm -rf $(PYTEST_LOGS)
	@mkdir -p tests/output && date +%s > tests/output/test-started
	@$(MAKE) venv
	@$(MAKE) emulator-tests
	@$(MAKE) unit
	@$(MAKE) integration
	@$(MAKE) sanity
	@$(MAKE) lint
	@$(MAKE) molecule
	@$(MAKE) build
	@$(MAKE) summary

# run_pytest(stage name, log name, venv, paths): keeps the output for the closing summary and fails when
# pytest ran nothing or skipped everything, so an empty or misplaced test directory cannot pass.
define run_pytest
	@$(call stage,$(1))
	@mkdir -p $(PYTEST_LOGS) tests/output/junit
	$(call dev_env,$(3)) $(3)/bin/python -m pytest -ra --junitxml=tests/output/junit/$(2).xml $(4) \
		2>&1 | tee $(PYTEST_LOGS)/$(2).log
	@if ! grep -Eq '[0-9]+ passed' <<<"$$(tail -n 1 $(PYTEST_LOGS)/$(2).log)"; then \
		echo "$(1): no test passed" >&2; exit 1; \
	fi
endef

emulator-tests: venv
	$(call run_pytest,emulator tests,1-emulator,$(VENV),emulator/tests)

unit: venv
	$(call run_pytest,unit tests (Python 3.11 / ansible-core 2.19),2-unit,$(VENV),tests/unit)
ifneq ($(PYTHON312),)
	$(call run_pytest,unit tests (Python 3.12 / ansible-core 2.21),3-unit-py312,$(VENV312),tests/unit)
endif

integration: venv
	$(call run_pytest,integration tests,4-integration,$(VENV),tests/integration)

# ansible-test only works on a tree at ansible_collections/<namespace>/<name>/ and should judge exactly
# what ships, so it runs on the built tarball extracted under .build/. Its results are copied back
# to tests/output/sanity-<ansible-core version>/.
# run_sanity(ansible-core version, venv, python version)
define run_sanity
	@$(call stage,ansible-test sanity (ansible-core $(1) / Python $(3)))
	@bash scripts/ansible-test-pip.sh $(2)
	@rm -rf .build/sanity-$(1) tests/output/sanity-$(1)
	@mkdir -p .build/sanity-$(1)/ansible_collections/$(NAMESPACE)/$(NAME) tests/output
	@tar -xzf $(TARBALL) -C .build/sanity-$(1)/ansible_collections/$(NAMESPACE)/$(NAME)
	@# Its own git repository: otherwise ansible-test takes this checkout's, which ignores .build/.
	@# ansible-test keeps its own virtualenvs in tests/output/, which must not count as content.
	@git init -q .build/sanity-$(1)/ansible_collections/$(NAMESPACE)/$(NAME)
	@echo /tests/output/ >> .build/sanity-$(1)/ansible_collections/$(NAMESPACE)/$(NAME)/.git/info/exclude
	@status=0; \
	( cd .build/sanity-$(1)/ansible_collections/$(NAMESPACE)/$(NAME) && \
	  env -u PYTHONPATH -u ANSIBLE_COLLECTIONS_PATH PATH="$(CURDIR)/$(2)/bin:$$PATH" \
	  ansible-test sanity --venv --python $(3) --color no ) || status=$$?; \
	cp -r .build/sanity-$(1)/ansible_collections/$(NAMESPACE)/$(NAME)/tests/output tests/output/sanity-$(1) 2>/dev/null || true; \
	if [ $$status -ne 0 ]; then echo "ansible-test sanity (ansible-core $(1)) failed; results in tests/output/sanity-$(1)/" >&2; fi; \
	exit $$status
endef

sanity: sanity-2.19 $(if $(PYTHON312),sanity-2.21)

sanity-2.19: venv tarball
	$(call run_sanity,2.19,$(VENV),3.11)

sanity-2.21: venv tarball
	$(call run_sanity,2.21,$(VENV312),3.12)

# ansible-lint resolves the playbooks' modules and module_defaults groups through the checkout link.
lint: venv
	@$(call stage,ansible-lint (production profile))
	env -u PYTHONPATH ANSIBLE_COLLECTIONS_PATH="$(COLLECTIONS)" PATH="$(CURDIR)/$(VENV)/bin:$$PATH" ansible-lint

# Run from the collection root: molecule finds galaxy.yml and takes its scenarios from extensions/molecule/.
molecule: venv
	@$(call stage,molecule scenarios)
	@if [ ! -d extensions/molecule ]; then echo "molecule: no extensions/molecule directory, nothing to run"; exit 0; fi; \
	$(call dev_env,$(VENV)) molecule test --all

tarball: venv
	@mkdir -p .build/dist
	@rm -f $(TARBALL)
	env -u PYTHONPATH -u ANSIBLE_COLLECTIONS_PATH $(VENV)/bin/ansible-galaxy collection build --force --output-path .build/dist
	@bash scripts/check-tarball.sh $(TARBALL)

# Build the tarball, install it into an empty temporary collections path and check that ansible finds
# and documents every module from that installed copy alone; then render the execution environment's
# build context (ansible-builder create, no container) and check it carries the tarball and requirements.
build: tarball
	@$(call stage,build and install the collection tarball)
	@PATH="$(CURDIR)/$(VENV)/bin:$$PATH" bash scripts/check-install.sh $(TARBALL) $(NAMESPACE).$(NAME)
	@PATH="$(CURDIR)/$(VENV)/bin:$$PATH" bash scripts/check-ee.sh $(TARBALL)

# Every stage passed when this runs; it repeats pytest's closing lines so they end the output.
summary:
	@started=$$(cat tests/output/test-started 2>/dev/null || date +%s); \
	$(call stage,summary: every stage passed in $$(( $$(date +%s) - started ))s)
	@for log in $(PYTEST_LOGS)/*.log; do \
		echo "$$(basename $$log .log | sed 's/^[0-9]*-//'):"; tail -n 1 "$$log"; \
	done

# ---------------------------------------------------------------------------------------------- demo

# The demo needs only .venv (Python 3.11 / ansible-core 2.19), not the Python 3.12 environment.
demo: $(VENV)/.installed link
	@if [ ! -f scripts/demo.sh ]; then \
		echo "make demo: scripts/demo.sh is not in this checkout yet, so there is no demo to run." >&2; exit 1; \
	fi
	$(call dev_env,$(VENV)) bash scripts/demo.sh

# ---------------------------------------------------------------------------------------------- benchmark

# Figures, not a test: BENCHMARK_ARGS="--mailboxes 50000 --latency-ms 80" to change the tenant (both scripts
# take these two options); ROLE_BENCHMARK_ARGS="--quick" or "--cases drift-1000" for role_runs.py alone.
benchmark: $(VENV)/.installed link
	$(call dev_env,$(VENV)) python benchmarks/bulk_reads.py $(BENCHMARK_ARGS)
	$(call dev_env,$(VENV)) python benchmarks/role_runs.py $(BENCHMARK_ARGS) $(ROLE_BENCHMARK_ARGS)

clean:
	rm -rf $(VENV) $(VENV312) .build tests/output .pytest_cache emulator/*.egg-info
