"""The search: Optuna studies whose trials train, export, check and evaluate specs, on Ray, tracked in MLflow.

:func:`run_search` runs or resumes a study described by a :class:`SearchConfig` (a YAML file or the default);
:func:`study_front` reads its Pareto front back (:mod:`nas.retrain` then trains the chosen trial fully). Trials
run through the executors of :mod:`nas.search.executors` (in-process for one worker, Ray otherwise;
:mod:`nas.benchmark` answers them from a table instead); samplers come from the registry of
:mod:`nas.search.samplers`; the front's maths and plots are :mod:`nas.search.pareto`'s.
"""

from nas.search._config import (DataConfig, ExportConfig, LatencyConfig, ProxyConfig, PrunerConfig,
                                 ResourcesConfig, SamplerConfig, SearchConfig, default_search_config, identity_view,
                                 load_search_config)
from nas.search._rebuild import RebuildReport, rebuild_study
from nas.search._record import Cause, TrialRecord
from nas.search._closed_loop import measured_times
from nas.search._store import REFERENCE_ATTR, load_optuna_study, optuna_storage
from nas.search._study import (SearchEvent, SearchSummary, StudyInfo, open_study, run_search, study_front,
                               trial_points)
from nas.search._tracking import Tracker, ui_link
from nas.search._trial_log import NullTrialLog, TrialLog, spec_params
from nas.search._trial import (TrialJob, TrialOutcome, full_train_config, load_study_images, load_valid_images,
                               proxy_train_config, reference_psnr, run_trial)
from nas.search.executors import Executor, ExecutorFactory, InProcessExecutor, RayExecutor, TrainingExecutors
from nas.search.pareto import FrontPoint, front_figure, pareto_front, write_front
from nas.search.samplers import SAMPLERS, register_sampler

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
    "identity_view",
    "run_search",
    "SearchEvent",
    "SearchSummary",
    "StudyInfo",
    "open_study",
    "load_optuna_study",
    "REFERENCE_ATTR",
    "study_front",
    "rebuild_study",
    "RebuildReport",
    "Cause",
    "TrialRecord",
    "Tracker",
    "FrontPoint",
    "pareto_front",
    "write_front",
    "front_figure",
    "Executor",
    "ExecutorFactory",
    "TrainingExecutors",
    "InProcessExecutor",
    "RayExecutor",
    "TrialJob",
    "TrialOutcome",
    "run_trial",
    "load_study_images",
    "load_valid_images",
    "reference_psnr",
    "trial_points",
    "spec_params",
    "ui_link",
    "SAMPLERS",
    "register_sampler",
    "TrialLog",
    "NullTrialLog",
    "optuna_storage",
    "proxy_train_config",
    "full_train_config",
    "measured_times",
]
