"""Benchmarks: figures, not tests. Each module is run from the repository's root as ``python -m bench.NAME``
(``--help`` says what it measures and how); its figures go to ``bench/results/`` (committed, so a fresh clone prints
them in minutes) and the documentation quotes them from there (``docs/benchmarks.md``). The shared pieces (paths,
result files, goal lines) are in :mod:`bench._harness`."""
