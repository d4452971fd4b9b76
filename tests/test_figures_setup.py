"""setup_notebook (every chapter's first cell): numpy scalars must print as plain numbers, because myst-nb's glue
stores a value's repr and ``{glue:text}`` with a format spec can only read a plain number (chapters 0-7)."""
import ast

import numpy as np

import dit_lib as dl


def test_setup_notebook_makes_scalar_reprs_readable_by_glue():
    saved = np.get_printoptions()
    try:
        dl.setup_notebook(seed_print=False)
        for value in (np.float64(0.025464990655657656), np.float32(1.5), np.int64(-3)):
            assert float(ast.literal_eval(repr(value))) == float(value), repr(value)
    finally:
        np.set_printoptions(**saved)


def test_setup_notebook_puts_titles_below_the_mode_bar():
    """Chapters 0-3: plotly's mode bar covered the right end of long titles; the book template moves them below it."""
    import plotly.graph_objects as go
    import plotly.io as pio

    saved = pio.templates.default
    try:
        dl.setup_notebook(seed_print=False)
        fig = go.Figure(go.Scatter(x=[0, 1], y=[0, 1]), layout=dict(title="a title", margin=dict(t=20)))
        title = fig.layout.template.layout.title
        assert title.yref == "container" and title.yanchor == "top" and title.automargin is True
        assert title.pad.t >= 30  # the mode bar is about 30 px tall
        assert pio.templates.default == dl.figures.BOOK_TEMPLATE
    finally:
        pio.templates.default = saved
