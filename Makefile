# ConvoInsight: `make run` serves everything locally; `make test` runs every test tier with real services.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 8080
DATA_DIR ?= ./.local_data
FUNCTION ?= datasets
USER ?= dev
PYTEST := $(BIN)/python tests/services.py run -- $(BIN)/pytest -p no:cacheprovider

export NO_GCE_CHECK := true
export LITELLM_LOCAL_MODEL_COST_MAP := True
export PYTHONPATH := $(CURDIR)

.PHONY: install run serve test test-unit test-contract test-integration test-e2e bench lint emulators plan token clean

install: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt
	@$(PYTHON) -c "import ensurepip" 2>/dev/null || (apt-get update -qq && apt-get install -y -qq python3-venv)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q -r requirements.txt -r requirements-dev.txt
	# Its protobuf<5 pin is wrong and would break Firestore; its real dependencies are in requirements.txt.
	$(BIN)/python -m pip install -q --no-deps gcloud-tasks-emulator==0.6.2
	@touch $@

run: install
	$(BIN)/python -m local_emulator --port $(PORT) --data-dir $(DATA_DIR)

serve: install
	$(BIN)/functions-framework --source functions/$(FUNCTION)/main.py --target $(FUNCTION) --port $(PORT)

test: install
	$(PYTEST) tests/unit tests/contract tests/integration tests/e2e

test-unit: install
	$(BIN)/pytest -p no:cacheprovider tests/unit

test-contract: install
	$(PYTEST) tests/contract

test-integration: install
	$(PYTEST) tests/integration

test-e2e: install
	$(PYTEST) tests/e2e

# The original monolith's import set, for the cold-start comparison: its own venv, built once.
LEGACY_VENV := .bench/legacy-venv

$(LEGACY_VENV)/.installed:
	$(PYTHON) -m venv $(LEGACY_VENV)
	$(LEGACY_VENV)/bin/pip install -q pandasai==3.0.0 Flask==3.1.3 polars==2.1.0 litellm==1.110.2 \
		google-cloud-storage==3.17.1 google-cloud-firestore==2.34.1
	@touch $@

bench: install $(LEGACY_VENV)/.installed
	$(BIN)/python -m tests.benchmarks --legacy-python $(LEGACY_VENV)/bin/python

lint: install
	$(BIN)/ruff check .

emulators: install
	$(BIN)/python tests/services.py run -- sh -c 'env | grep -E "EMULATOR_HOST|TEST_" ; echo "services up; Ctrl-C stops them"; sleep infinity'

plan:
	cd terraform/environments/$(or $(ENV),dev) && terraform init -backend=false && terraform plan

token: install
	@AUTH_MODE=token $(BIN)/python -c "from common.config import Settings; from common.auth import issue_token; \
	print(issue_token('$(USER)', Settings.from_env().auth_token_secret))"

clean:
	rm -rf $(VENV) .services .pytest_cache
