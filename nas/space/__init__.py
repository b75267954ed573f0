"""The architecture space: :class:`ArchSpec`, its deployed op table, search-space files and the reference zoo.

Pure Python (no TensorFlow): everything here is cheap to import and to evaluate.
"""

from nas.space._graph import DEFAULT_INPUT_HW, Op, deploy_ops
from nas.space._space import ChoiceParam, IntParam, Param, SearchSpace, load_space, space_search_path
from nas.space._spec import CARRY_CHANNELS, IN_CHANNELS, ArchSpec, Block, ClipKind, ClipWhere, Skip
from nas.space._zoo import ZooEntry, load_spec, zoo_entries, zoo_get

__all__ = [
    "ArchSpec",
    "Block",
    "ClipKind",
    "ClipWhere",
    "Skip",
    "Op",
    "deploy_ops",
    "DEFAULT_INPUT_HW",
    "SearchSpace",
    "IntParam",
    "ChoiceParam",
    "Param",
    "CARRY_CHANNELS",
    "IN_CHANNELS",
    "load_space",
    "space_search_path",
    "ZooEntry",
    "zoo_entries",
    "zoo_get",
    "load_spec",
]
