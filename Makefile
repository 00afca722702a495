# The README's two commands: `make run` (dashboard on the embedded demo) and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: install run local test lint audit format bench clean

$(STAMP): requirements.txt requirements-dev.txt constraints.txt
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt -c constraints.txt
	touch $(STAMP)

install: $(STAMP)

# Only this machine can open it; hosted platforms (Streamlit Community Cloud) keep their own
# address, which is why the flag is here and not in .streamlit/config.toml.
run: install
	$(VENV)/bin/streamlit run streamlit_app.py --server.address 127.0.0.1

local: install
	$(PY) -m pipeline.local

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# Both cores: a test file's tests stay on one worker, so its module's servers start once.
PYTEST_WORKERS ?= 2

test: lint
	$(VENV)/bin/pytest -n $(PYTEST_WORKERS) --dist loadfile

# Known vulnerabilities in every pin (pip-audit) and bandit on our code; see security/accepted.toml.
audit: install
	$(PY) -m security.audit

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: install
	$(PY) -m bench.run

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
