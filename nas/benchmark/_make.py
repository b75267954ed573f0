"""Making a benchmark table: a study of the space run by the product itself (space-filling sampler, no pruning,
every zoo network first), then exported (``nas table make``, ``nas table export``)."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from nas._logging import get_logger
from nas.errors import SearchError
from nas.latency import load_latency_model
from nas.benchmark._executors import ReplayExecutors, TableExecutors
from nas.benchmark._table import BenchTable, check_same_making, table_from_study, table_meta
from nas.search import REFERENCE_ATTR, SearchConfig, SearchEvent, load_optuna_study, open_study, run_search
from nas.search.executors import TrainingExecutors
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


def _input_hw(c: SearchConfig) -> tuple[int, int]:
    return tuple(c.export.input_size or load_latency_model(c.latency.model).input_hw)


def _table_of(info) -> BenchTable:
    st = load_optuna_study(info)
    return table_from_study(info.config, st.get_trials(deepcopy=False), _input_hw(info.config),
                            st.user_attrs.get(REFERENCE_ATTR), info.name)


def _union(table: BenchTable, earlier: BenchTable | None) -> BenchTable:
    """``table`` with the rows of ``earlier`` it does not hold yet (a table going on from its CSV never writes fewer
    rows than the CSV held)."""
    if earlier is None:
        return table
    have = {r.hash for r in table.rows}
    return BenchTable(table.rows + tuple(r for r in earlier.rows if r.hash not in have), table.meta)


def make_table(config: SearchConfig, n: int, *, callback: Callable[[SearchEvent], None] | None = None,
               trial_log=None, csv: str | Path | None = None) -> BenchTable:
    """Run (or resume) the table study of ``config`` (see :func:`table_config`; pass it through that first) until
    it holds ``n`` distinct specs (duplicate draws do not count), and return its table.

    With ``csv``, the table is written there after every finished trial, so an interruption loses nothing that
    finished. If ``csv`` already holds a table made with the same space, proxy, data, seed, NPU target, latency
    model and input size, its specs are answered from it instead of trained: the balanced sampler draws the same
    specs in the same order on any machine, so a table goes on from its CSV where its study is not at hand (a fresh
    clone, another computer), and only the specs it lacks are trained. A CSV made with other settings is refused."""
    if n < 1:
        raise SearchError(f"a table needs at least 1 spec, got n={n}")
    earlier = None
    if csv is not None and Path(csv).exists():
        earlier = BenchTable.read_csv(csv)
        check_same_making(earlier, table_meta(config, _input_hw(config)), str(csv))
        stale = len(earlier.stale)
        log.info("table study %s: %d specs of %s are answered from it, not trained%s", config.name,
                 len(earlier) - stale, csv, f"; {stale} measured before today's training form or INT8 export are "
                 "measured again" if stale else "")

    def on_event(ev: SearchEvent) -> None:
        if csv is not None and ev.kind == "finish":
            _union(_table_of(open_study(config.study_dir)), earlier).write_csv(csv)
        if callback is not None:
            callback(ev)

    executors = TableExecutors() if config.table else TrainingExecutors()
    if earlier is not None:
        executors = ReplayExecutors(earlier, executors)
    target = n
    held = -1
    while True:
        summary = run_search(config.model_copy(update={"n_trials": target}), callback=on_event, trial_log=trial_log,
                             plots=False, executors=executors)
        table = _union(_table_of(open_study(config.study_dir)), earlier)
        if csv is not None:
            table.write_csv(csv)
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
