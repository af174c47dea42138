# ConvoInsight: `make run` serves everything locally; `make test` runs every test tier with real services.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 8080
DATA_DIR ?= ./.local_data
FUNCTION ?= datasets
TOKEN_USER ?= dev
PYTEST := $(BIN)/python tests/services.py run -- $(BIN)/pytest -p no:cacheprovider

export NO_GCE_CHECK := true
export LITELLM_LOCAL_MODEL_COST_MAP := True
export PYTHONPATH := $(CURDIR)

.PHONY: check help install run serve test test-unit test-contract test-integration test-e2e bench capacity lint emulators plan \
	tf-init apply fmt validate tf-validate checkov logs token reset-data rotate-keys clean
.DEFAULT_GOAL := check

check: install ## lint, then the fast unit tests (no services needed); the default goal
	$(BIN)/ruff check .
	$(BIN)/pytest -p no:cacheprovider -q tests/unit

help: ## list the targets
	@grep -E '^[a-z][a-z0-9-]*:.*## ' $(firstword $(MAKEFILE_LIST)) | awk -F ':.*## ' '{printf "%-17s %s\n", $$1, $$2}'

install: $(VENV)/.installed ## create .venv and install the requirements

$(VENV)/.installed: requirements.txt requirements-dev.txt
	@$(PYTHON) -c "import ensurepip" 2>/dev/null || (apt-get update -qq && apt-get install -y -qq python3-venv)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q -r requirements.txt -r requirements-dev.txt
	# Its protobuf<5 pin is wrong and would break Firestore; its real dependencies are in requirements.txt.
	$(BIN)/python -m pip install -q --no-deps gcloud-tasks-emulator==0.6.2
	@touch $@

run: install ## serve every function locally on PORT (default 8080)
	$(BIN)/python -m local_emulator --port $(PORT) --data-dir $(DATA_DIR)

serve: install ## serve one function: make serve FUNCTION=datasets
	$(BIN)/functions-framework --source functions/$(FUNCTION)/main.py --target $(FUNCTION) --port $(PORT)

test: install ## every test tier, with the services it needs, then the short fuzzing run (fuzz-ci), tf-validate and checkov
	$(PYTEST) tests/unit tests/contract tests/integration tests/e2e
	$(MAKE) --no-print-directory fuzz-ci
	$(MAKE) --no-print-directory tf-validate
	$(MAKE) --no-print-directory checkov

test-unit: install ## the unit tests
	$(BIN)/pytest -p no:cacheprovider tests/unit

test-contract: install ## the contract tests
	$(PYTEST) tests/contract

test-integration: install ## the integration tests
	$(PYTEST) tests/integration

test-e2e: install ## the end-to-end tests
	$(PYTEST) tests/e2e

# The original monolith's import set, for the cold-start comparison: its own venv, built once.
LEGACY_VENV := .bench/legacy-venv

$(LEGACY_VENV)/.installed:
	$(PYTHON) -m venv $(LEGACY_VENV)
	$(LEGACY_VENV)/bin/pip install -q pandasai==3.0.0 Flask==3.1.3 polars==2.1.0 litellm==1.110.2 \
		google-cloud-storage==3.17.1 google-cloud-firestore==2.34.1
	@touch $@

bench: install $(LEGACY_VENV)/.installed ## cold-start benchmarks (figures in BENCHMARKS.md)
	$(BIN)/python -m tests.benchmarks --legacy-python $(LEGACY_VENV)/bin/python

capacity: install ## the capacity model: question latency for 100 and 1,000 users under the Terraform's sizing
	$(BIN)/python -m capacity

lint: install ## ruff check .
	$(BIN)/ruff check .

emulators: install ## start the test services and wait
	$(BIN)/python tests/services.py run -- sh -c 'env | grep -E "EMULATOR_HOST|TEST_" ; echo "services up; Ctrl-C stops them"; sleep infinity'

# Terraform, per environment (terraform/README.md is the deploy guide). ENV picks terraform/environments/<ENV>;
# its backend.hcl (from backend.hcl.example) names the state bucket.
ENV ?= dev
TF_DIR := terraform/environments/$(ENV)

tf-init: ## terraform init with the state bucket of terraform/environments/ENV/backend.hcl: make tf-init ENV=dev
	@test -f $(TF_DIR)/backend.hcl || { echo "copy $(TF_DIR)/backend.hcl.example to backend.hcl and name your state bucket" >&2; exit 2; }
	cd $(TF_DIR) && terraform init -backend-config=backend.hcl

plan: tf-init ## terraform plan: make plan ENV=dev
	cd $(TF_DIR) && terraform plan

apply: tf-init ## terraform apply (asks before changing anything): make apply ENV=prod
	cd $(TF_DIR) && terraform apply

fmt: ## terraform fmt -recursive terraform
	terraform fmt -recursive terraform

validate: ## terraform validate one environment, no state or project needed: make validate ENV=dev
	cd $(TF_DIR) && terraform init -backend=false -input=false >/dev/null && terraform validate

# Every resource and data source against the pinned providers' real schemas (tools/tf_validate/providers.yaml:
# CDK for Terraform's published bindings), offline once they are cached outside the repository.
tf-validate: install ## check each resource and data source in terraform/ against the provider schemas (part of make test)
	$(BIN)/python -m tools.tf_validate terraform

# checkov in a venv of its own (its dependencies are not the project's); offline: in a network namespace where
# one can be made, and --skip-download either way. Each accepted finding is skipped inline, with its reason.
CHECKOV_VENV := .bench/checkov-venv

$(CHECKOV_VENV)/.installed:
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install -q checkov==3.3.30
	@touch $@

checkov: $(CHECKOV_VENV)/.installed ## checkov's Terraform checks over terraform/ (part of make test)
	@if unshare -rn true 2>/dev/null; then offline="unshare -rn"; else offline=""; fi; \
	$$offline $(CHECKOV_VENV)/bin/checkov -d terraform --framework terraform --quiet --compact --skip-download

logs: ## the deployed function's recent logs: make logs FUNCTION=agents ENV=dev [REGION=europe-west1]
	gcloud functions logs read $(FUNCTION)-$(ENV) --gen2 $(if $(REGION),--region=$(REGION)) --limit=100

token: install ## a bearer token for AUTH_MODE=token: make token TOKEN_USER=alice
	@[ $${#AUTH_TOKEN_SECRET} -ge 32 ] || { echo "set AUTH_TOKEN_SECRET (32+ characters) first" >&2; exit 2; }
	@AUTH_MODE=token $(BIN)/python -c "from common.config import Settings; from common.auth import issue_token; \
	print(issue_token('$(TOKEN_USER)', Settings.from_env().auth_token_secret))"

reset-data: ## delete the emulator's local data (DATA_DIR: blobs, SQLite metadata, its generated keys); stop it first
	rm -rf $(DATA_DIR)

# After putting a new key first in ENCRYPTION_KEYS (README: Secrets and key rotation); the old key may go once
# this exits 0. Uses the configured metadata store, or the emulator's SQLite file and keys in DATA_DIR.
rotate-keys: install ## re-encrypt every stored secret under ENCRYPTION_KEYS' first key; report JSON: make rotate-keys [DRY_RUN=1]
	DATA_DIR=$(DATA_DIR) $(BIN)/python -m tools.rotate_keys $(if $(DRY_RUN),--dry-run)

clean: ## remove .venv and the test services' state (not the emulator's data: see reset-data)
	rm -rf $(VENV) .services .pytest_cache

# Seeded fuzzing of the API on loopback (tests/fuzz): the v1 API from common/openapi.yaml, mutated requests on
# the original API's routes. Same FUZZ_SEED, same requests.
FUZZ_SEED ?= 8
.PHONY: fuzz fuzz-ci

fuzz: install ## long seeded fuzzing of the API on loopback: make fuzz FUZZ_SEED=9
	$(BIN)/python -m tests.fuzz long --seed $(FUZZ_SEED)

fuzz-ci: install ## the short seeded fuzzing subset that `make test` runs
	$(BIN)/python -m tests.fuzz ci --seed $(FUZZ_SEED)

# Accuracy of the question pipeline with the configured model (evaluation/): the bundled questions over the
# bundled data, through a local emulator on loopback. Reports; exits 0 unless EVAL_ARGS='--min-accuracy 80' fails.
EVAL_ARGS ?=
.PHONY: eval eval-ci

eval: install ## accuracy, calls, rounds, tokens, cost, latency: LLM_DEFAULT_MODEL=... LLM_DEFAULT_API_KEYS=... make eval
	$(BIN)/python -m evaluation $(EVAL_ARGS)

eval-ci: install ## the eval harness's own tests, against a scripted model (its accuracy is no claim)
	$(PYTEST) -q tests/integration/test_eval_harness.py
