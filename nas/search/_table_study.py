"""Making a benchmark table: a study of the space run by the product itself (space-filling sampler, no pruning,
every zoo network first), then exported (``nas table make``, ``nas table export``)."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from nas._logging import get_logger
from nas.errors import SearchError
from nas.latency import load_latency_model
from nas.search._config import SearchConfig
from nas.search._store import REFERENCE_ATTR, load_optuna_study, open_study
from nas.search._study import SearchEvent, run_search
from nas.search._table import BenchTable, table_from_study
from nas.space import zoo_entries

__all__ = ["table_config", "make_table", "export_table"]

log = get_logger("search")


def table_config(config: SearchConfig, name: str | None = None) -> SearchConfig:
    """The study that makes a table of ``config``'s space with its proxy: the ``balanced`` (space-filling) sampler
    with the config's seed, no pruning (every row is a full proxy training), every zoo network tried first. (A
    config that names a table makes a table of that table: the fast test of this loop.)"""
    data = config.model_dump()
    if config.name == "default" or name:
        data["name"] = name or f"table-{config.space}-{config.proxy.steps}"
    data.update(sampler={**data["sampler"], "name": "balanced"}, pruner={**data["pruner"], "name": "none"},
                warm_start=tuple(dict.fromkeys(e.name for e in zoo_entries())))
    return SearchConfig.model_validate(data)


def _table_of(info) -> BenchTable:
    c = info.config
    st = load_optuna_study(info)
    input_hw = tuple(c.export.input_size or load_latency_model(c.latency.model).input_hw)
    return table_from_study(c, st.get_trials(deepcopy=False), input_hw, st.user_attrs.get(REFERENCE_ATTR), info.name)


def make_table(config: SearchConfig, n: int, *, callback: Callable[[SearchEvent], None] | None = None,
               trial_log=None) -> BenchTable:
    """Run (or resume) the table study of ``config`` (see :func:`table_config`; pass it through that first) until
    it holds ``n`` distinct specs (duplicate draws do not count), and return its table."""
    if n < 1:
        raise SearchError(f"a table needs at least 1 spec, got n={n}")
    target = n
    held = -1
    while True:
        summary = run_search(config.model_copy(update={"n_trials": target}), callback=callback, trial_log=trial_log,
                             plots=False)
        table = _table_of(open_study(config.study_dir))
        if len(table) >= n:
            return table
        if len(table) == held and summary.new_trials == 0:
            raise SearchError(f"the table study {config.name} stopped at {len(table)} distinct specs of {n}")
        held = len(table)
        finished = summary.complete + summary.pruned + summary.failed
        target = finished + (n - len(table))
        log.info("table study %s: %d distinct specs of %d, running %d more trials", config.name, len(table), n,
                 n - len(table))


def export_table(study: str | Path, out: str | Path = "runs") -> BenchTable:
    """The table of an existing study (its complete and infeasible trials, each spec once)."""
    return _table_of(open_study(study, out))
