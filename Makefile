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
# The same run drives the live rendering (DIT_LIVE_CHECK): every dl.explorer call also builds its JupyterLab
# controls and draws the figure for every value they reach (a dozen stops per slider), failing the chapter on an
# error or a control that changes nothing; tests/book/test_live_explorers.py then checks the records.
notebooks: $(STAMP)
	$(BIN)/python tools/test_book.py prepare $(TESTSRC)
	DIT_BOOK_BUILD=1 DIT_LIVE_CHECK=$(abspath $(TESTSRC))/.live OMP_NUM_THREADS=1 $(BIN)/pytest --nbmake --overwrite --nbmake-timeout=400 -n $(JOBS) -q \
	    -p no:cacheprovider --durations=0 $$($(BIN)/python tools/test_book.py chapters $(TESTSRC))

test-build: $(STAMP)
	$(BIN)/jupyter-book build $(TESTSRC) -W --keep-going --all

browser-tests: $(STAMP)
	DIT_BUILT_BOOK=$(abspath $(TESTSRC)) $(BIN)/pytest tests/book -q -rs

## make lab: JupyterLab (with jupyterlab-myst) on a working copy _lab/ of the chapters; book/ stays clean
lab: $(STAMP)
	$(BIN)/python tools/lab.py run

clean:
	rm -rf _build _assets _testbook .pytest_cache .jupyter_cache
	@test ! -d _lab || echo "(kept _lab/, the lab's working copy with your notebooks; rm -rf _lab to drop it)"
	find . -name __pycache__ -not -path "./$(VENV)/*" -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV)
