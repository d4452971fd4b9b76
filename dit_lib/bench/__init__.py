"""Benchmarks of dit_lib: ``python -m dit_lib.bench attention|gradient [--quick] [--json PATH]``.

Speed goals live here, never in timed tests. Each sub-benchmark is a module of this package with a
``main(argv)`` function.
"""
