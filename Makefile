# Latent DiT Limits — two commands: `make book` and `make test`. See README.md.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
TESTSRC := _testbook
JOBS    ?= 2

.PHONY: book test lab clean distclean unit notebooks test-build browser-tests setup

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q -r requirements.txt
	$(BIN)/pip install -q --no-deps -e .
	touch $(STAMP)

setup: $(STAMP)

## make book: install, execute every chapter and build the HTML book into _build/html
book: $(STAMP)
	$(BIN)/jupyter-book build . --all
	@echo
	@echo "The book is built. Open: file://$(CURDIR)/_build/html/index.html"

## make test: unit tests, every chapter under nbmake, a -W build of those executed notebooks, browser checks
test: $(STAMP) unit notebooks test-build browser-tests

unit: $(STAMP)
	$(BIN)/pytest tests --ignore=tests/book -n $(JOBS) -q

# Chapters run once: nbmake executes a scratch copy in place (--overwrite) and the -W build renders
# those outputs with execution switched off, so `make test` never executes a chapter twice.
# One thread per notebook: two notebooks run side by side on the two cores (--durations prints each chapter's time).
notebooks: $(STAMP)
	$(BIN)/python tools/test_book.py prepare $(TESTSRC)
	DIT_BOOK_BUILD=1 OMP_NUM_THREADS=1 $(BIN)/pytest --nbmake --overwrite --nbmake-timeout=400 -n $(JOBS) -q \
	    -p no:cacheprovider --durations=0 $$($(BIN)/python tools/test_book.py chapters $(TESTSRC))

test-build: $(STAMP)
	$(BIN)/jupyter-book build $(TESTSRC) -W --keep-going --all

browser-tests: $(STAMP)
	DIT_BUILT_BOOK=$(CURDIR)/$(TESTSRC) $(BIN)/pytest tests/book -q

## make lab: JupyterLab on the chapters, with live ipywidgets explorers
lab: $(STAMP)
	$(BIN)/jupyter lab book/

clean:
	rm -rf _build _assets _testbook .pytest_cache .jupyter_cache
	find . -name __pycache__ -not -path "./$(VENV)/*" -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV)
