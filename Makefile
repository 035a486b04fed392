# GoCua: `make demo` runs the bot on SQLite, `make test` runs ruff, mypy and the whole suite.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEMO_USER ?= an
LOCALES_PO := $(wildcard locales/*/LC_MESSAGES/messages.po)
LOCALES_MO := $(LOCALES_PO:.po=.mo)

.PHONY: demo test lint typecheck install locales compile clean bench

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

locales/%/LC_MESSAGES/messages.mo: locales/%/LC_MESSAGES/messages.po $(STAMP)
	$(BIN)/pybabel compile --use-fuzzy -d locales -D messages -l $* -i $< -o $@

compile: $(LOCALES_MO)

# Re-extract texts from the code and the flow/FAQ YAML files and merge them into the catalogs.
# The catalogs keep their headers (Plural-Forms is what ngettext needs) and 100-column lines.
locales: $(STAMP)
	$(BIN)/pybabel extract -F babel.cfg --no-location --sort-output --omit-header \
		-k N_ -k _ -k t -k plural:1,2 -o locales/messages.pot bot handlers conversations db reports
	$(BIN)/pybabel update -i locales/messages.pot -d locales -D messages --no-fuzzy-matching --width 100

demo: $(STAMP) compile
	mkdir -p data
	$(BIN)/gocua db upgrade
	$(BIN)/gocua seed demo
	@if [ -n "$$TELEGRAM_BOT_TOKEN" ]; then \
		$(BIN)/gocua run telegram; \
	else \
		case "$(DEMO_USER)" in an|binh|cuong) role=volunteer;; lan) role=leader;; admin) role=admin;; *) role=resident;; esac; \
		echo "Console chat as $$role '$(DEMO_USER)' (others: an, binh, cuong, lan, admin, or any other name for a resident: make demo DEMO_USER=lan)"; \
		$(BIN)/gocua chat --user $(DEMO_USER); \
	fi

lint: $(STAMP)
	$(BIN)/ruff check .

# mypy over the packages listed in pyproject.toml [tool.mypy]; its cache is .mypy_cache/.
typecheck: $(STAMP)
	$(BIN)/mypy

# pytest runs in GOCUA_TEST_WORKERS xdist workers (default 4), each with its own PostgreSQL database when GOCUA_TEST_POSTGRES_URL is set (.ci/suite).
test: $(STAMP) compile lint typecheck
	bash .ci/suite

bench: $(STAMP) compile
	$(BIN)/python bench/throughput.py

clean:
	rm -rf $(VENV) data .pytest_cache .ruff_cache .mypy_cache
	find . -name '*.mo' -delete
