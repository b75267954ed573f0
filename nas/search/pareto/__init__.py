"""The Pareto front of a study: its maths (:mod:`._front`) and its table, CSV, HTML and PNG (:mod:`._plot`)."""

from nas.search.pareto._front import (FrontPoint, best_point, hypervolume, hypervolume_history, pareto_front,
                                     pareto_ranks)
from nas.search.pareto._plot import front_figure, write_front, write_hypervolume, zoo_points

__all__ = ["FrontPoint", "pareto_front", "pareto_ranks", "best_point", "hypervolume", "hypervolume_history",
           "front_figure", "write_front", "write_hypervolume", "zoo_points"]
