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
