"""The search: Optuna studies whose trials train, export, check and evaluate specs, on Ray, tracked in MLflow.

:func:`run_search` runs or resumes a study described by a :class:`SearchConfig` (a YAML file or the default);
:func:`study_front` reads its Pareto front back; :func:`retrain` trains a chosen trial's spec fully (with QAT),
exports and registers it; :func:`proxy_check` measures how well the study's proxy ranks networks;
:func:`make_table` trains a benchmark table of the space. Trials run through an :class:`Executor`: in-process for
one worker, Ray otherwise, or a :class:`TableExecutor` that looks results up in a :class:`BenchTable`. Samplers are
chosen from the :data:`SAMPLERS` registry (:func:`register_sampler` adds one).
"""

from nas.search._config import (DataConfig, ExportConfig, LatencyConfig, ProxyConfig, PrunerConfig,
                                 ResourcesConfig, SamplerConfig, SearchConfig, default_search_config,
                                 load_search_config)
from nas.search._executor import Executor, InProcessExecutor, RayExecutor
from nas.search._pareto import FrontPoint, front_figure, pareto_front, write_front
from nas.search._proxy_check import ProxyCheckReport, TauEstimate, kendall, proxy_check, spread_specs
from nas.search._rebuild import RebuildReport, rebuild_study
from nas.search._retrain import RetrainResult, retrain
from nas.search._samplers import SAMPLERS, register_sampler
from nas.search._study import SearchEvent, SearchSummary, StudyInfo, open_study, run_search, study_front
from nas.search._table import BenchTable, TableExecutor, TableRow
from nas.search._table_study import export_table, make_table, table_config
from nas.search._tracking import ui_link
from nas.search._trial import TrialJob, TrialOutcome, run_trial

__all__ = [
    "SearchConfig",
    "DataConfig",
    "ProxyConfig",
    "ExportConfig",
    "LatencyConfig",
    "SamplerConfig",
    "PrunerConfig",
    "ResourcesConfig",
    "load_search_config",
    "default_search_config",
    "run_search",
    "SearchEvent",
    "SearchSummary",
    "StudyInfo",
    "open_study",
    "study_front",
    "rebuild_study",
    "RebuildReport",
    "FrontPoint",
    "pareto_front",
    "write_front",
    "front_figure",
    "Executor",
    "InProcessExecutor",
    "RayExecutor",
    "TrialJob",
    "TrialOutcome",
    "run_trial",
    "retrain",
    "RetrainResult",
    "ui_link",
    "proxy_check",
    "ProxyCheckReport",
    "TauEstimate",
    "kendall",
    "spread_specs",
    "SAMPLERS",
    "register_sampler",
    "BenchTable",
    "TableRow",
    "TableExecutor",
    "make_table",
    "export_table",
    "table_config",
]
