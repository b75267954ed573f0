"""Benchmark tables of a search space (NAS-Bench style) and the executors that answer a study from them.

A :class:`BenchTable` holds specs trained once by a study's proxy (:func:`make_table` makes one with the product
itself, resumable from its CSV); :class:`TableExecutors` answers a study's trials from it on a simulated clock, so
samplers are compared in seconds instead of days; :class:`SyntheticExecutors` answers them with made-up results
(the driver's own tests and bench); :class:`SurrogateExecutors` answers them from a surrogate fitted to a table
(any spec of the space, in milliseconds).
"""

from nas.benchmark._executors import ReplayExecutor, ReplayExecutors, TableExecutor, TableExecutors
from nas.benchmark._make import export_table, make_table, table_config
from nas.benchmark._surrogate import (KINDS as SURROGATE_KINDS, Surrogate, SurrogateExecutor, SurrogateExecutors,
                                      SurrogateScore, cross_validate, fit_surrogate, held_out, spec_features)
from nas.benchmark._synthetic import SyntheticExecutor, SyntheticExecutors, synthetic_psnr
from nas.benchmark._table import (RESULT_META, TABLE_FORMAT, BenchTable, LookupFidelity, TableRow, check_same_making,
                                  space_digest, spec_distance, table_from_study, table_meta)

__all__ = ["BenchTable", "TableRow", "LookupFidelity", "TableExecutor", "TableExecutors", "ReplayExecutor",
           "ReplayExecutors", "SyntheticExecutor", "SyntheticExecutors", "synthetic_psnr", "make_table",
           "export_table", "table_config", "table_from_study", "table_meta", "check_same_making", "space_digest",
           "spec_distance", "RESULT_META", "TABLE_FORMAT", "Surrogate", "SurrogateExecutor", "SurrogateExecutors",
           "SurrogateScore", "SURROGATE_KINDS", "cross_validate", "fit_surrogate", "held_out", "spec_features"]
