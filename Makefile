# Two commands do everything: `make run` and `make test`. Both install what is missing first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DATA ?= data
# Extra Debian packages the test suite needs beyond what running pallay needs.
TEST_DEBS := asterisk-core-sounds-es-wav baresip chromium chromium-driver

.PHONY: install install-test run test bench lint clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml deploy/install-debian.sh
	bash deploy/install-debian.sh
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

install-test: install
	bash deploy/install-debian.sh $(TEST_DEBS)

run: install
	$(BIN)/pallay --data $(DATA) init
	$(BIN)/pallay --data $(DATA) serve

test: install-test
	$(BIN)/python -m pytest -q -ra $(PYTEST_ARGS)

bench: install-test
	$(BIN)/python -m bench

lint: install
	$(BIN)/ruff check audio_lessons ivr kiosk admin tests bench

clean:
	rm -rf $(VENV) build *.egg-info
