# Every target sets itself up: a fresh machine needs only Python 3.11 and make, and for
# the tests npm and Java too (their HTML checker, vnu.jar, comes from npm, runs on Java).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 5000
STAMP := $(VENV)/.installed
# npm ci writes this file; it is newer than package-lock.json once the tools are in.
NODE_STAMP := node_modules/.package-lock.json

.PHONY: setup run serve-prod test lint audit e2e bench clean i18n catalogs screenshots

# The translations: one catalog per language, compiled (.mo, not kept in git) whenever its
# .po is newer. Entries marked fuzzy are shown too: they wait for a native speaker's review.
I18N := hrdfund/translations
MO_FILES := $(patsubst %.po,%.mo,$(wildcard $(I18N)/*/LC_MESSAGES/messages.po))

$(I18N)/%/LC_MESSAGES/messages.mo: $(I18N)/%/LC_MESSAGES/messages.po $(STAMP)
	$(BIN)/pybabel compile --use-fuzzy --statistics -l $* -i $< -o $@

catalogs: $(MO_FILES)

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $(STAMP)

# --ignore-scripts: vnu-jar's install script would fetch a Java runtime from outside the
# registry when none is installed; the tests run vnu.jar with the system's Java.
$(NODE_STAMP): package.json package-lock.json
	@command -v npm >/dev/null || { echo "npm is needed (Debian: apt-get install npm)"; exit 1; }
	npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	touch $@

setup: $(STAMP) $(NODE_STAMP) catalogs

## run: migrate, load demo data into an empty database, serve on 127.0.0.1:$(PORT)
run: $(STAMP) catalogs
	HRDFUND_ENV=development $(BIN)/flask db upgrade
	HRDFUND_ENV=development $(BIN)/flask hrdfund demo-data --if-empty
	@echo "Demo accounts (login, password, TOTP secret): instance/demo-accounts.json"
	HRDFUND_ENV=development HRDFUND_BASE_URL=$${HRDFUND_BASE_URL:-http://127.0.0.1:$(PORT)} \
		$(BIN)/flask run --host 127.0.0.1 --port $(PORT)

## serve-prod: production serving: migrate, then gunicorn with $(WORKERS) workers on
## 127.0.0.1:$(PORT), behind a TLS proxy; needs DATABASE_URL and the three secrets set
WORKERS ?= 3
serve-prod: $(STAMP) catalogs
	HRDFUND_ENV=production $(BIN)/flask db upgrade
	HRDFUND_ENV=production $(BIN)/python -m gunicorn --workers $(WORKERS) \
		--bind 127.0.0.1:$(PORT) --no-control-socket app:app

## test: the whole suite (PostgreSQL too when HRDFUND_TEST_DATABASE_URL is set), on
## $(JOBS) processes, each test file's SQLite and PostgreSQL halves whole on one of them,
## the longest first (tests/scheduling.py)
JOBS ?= auto
test: setup
	$(BIN)/pytest -n $(JOBS) --dist loadfile --durations=15

## e2e: only the browser tests
e2e: setup
	$(BIN)/pytest tests/e2e

## bench: build a large dataset in a temporary folder, measure against baselines, write
## bench/results.json and the table in bench/README.md
bench: $(STAMP)
	$(BIN)/python -m bench.run $(PARTS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

## audit: pip-audit over the pinned requirements, in a virtualenv of its own. A known
## vulnerability fails it. A package the vulnerability service cannot be asked about is
## reported loudly; AUDIT_STRICT=1 makes that fail too.
AUDIT_VENV := .venv-audit
$(AUDIT_VENV)/.installed: requirements-audit.txt
	test -x $(AUDIT_VENV)/bin/python || $(PYTHON) -m venv $(AUDIT_VENV)
	$(AUDIT_VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-audit.txt
	touch $@

audit: $(AUDIT_VENV)/.installed
	@status=0; $(AUDIT_VENV)/bin/pip-audit --no-deps --disable-pip --progress-spinner off \
		-r requirements.txt -r requirements-dev.txt $(if $(AUDIT_STRICT),--strict) \
		>.audit.log 2>&1 || status=$$?; cat .audit.log; \
	if grep -q "could not be audited" .audit.log; then \
		echo "pip-audit: the vulnerability service could not be asked about the packages" \
		"above; they were NOT audited."; fi; \
	exit $$status

clean:
	rm -rf $(VENV) $(AUDIT_VENV) node_modules .pytest_cache .ruff_cache .audit.log

## i18n: extract every message (with the keywords the code uses), update each catalog
## from it, and compile them; make run and make test compile the catalogs themselves
i18n: $(STAMP)
	$(BIN)/pybabel extract -F babel.cfg -k _l -k lazy_gettext -k ngettext:1,2 \
		-k lazy_ngettext:1,2 -k lazy_pgettext:1c,2 --sort-by-file --no-wrap --omit-header -o $(I18N)/messages.pot .
	$(BIN)/pybabel update -i $(I18N)/messages.pot -d $(I18N) --no-wrap --ignore-obsolete \
		--no-fuzzy-matching
	$(BIN)/pybabel compile -d $(I18N) --use-fuzzy

## screenshots: the application form on a 390-pixel screen in ar, fa, zh and fr, as
## docs/screenshots/form-<language>.png, and a manager's dashboard, pool, case and queue
## on a 390x844 phone and a 1280x800 desktop, as docs/screenshots/<page>-<screen>.png
## (Debian's chromium; a CJK font for zh)
screenshots: $(STAMP) catalogs
	$(BIN)/python docs/screenshots/take.py
	$(BIN)/python docs/screenshots/staff.py
