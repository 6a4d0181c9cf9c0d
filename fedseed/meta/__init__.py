"""Meta-recipes: aggregators that turn accepted client recipes into the next
meta-recipe, as pure functions behind one interface."""

from fedseed.errors import AggregationError
from fedseed.meta.base import Aggregator, AggregatorState, ClientReply, sample_assignment
from fedseed.meta.best import Best

#: Aggregators selectable by name (run config ``aggregator``, ``--aggregator``).
AGGREGATORS: dict[str, type] = {"best": Best}


def get_aggregator(name: str) -> Aggregator:
    """The aggregator called ``name``."""
    if name not in AGGREGATORS:
        raise AggregationError(f"unknown aggregator '{name}'; choose from "
                               f"{', '.join(sorted(AGGREGATORS))}")
    return AGGREGATORS[name]()


__all__ = ["AGGREGATORS", "Aggregator", "AggregatorState", "Best", "ClientReply",
           "get_aggregator", "sample_assignment"]
