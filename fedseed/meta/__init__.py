"""Meta-recipes: aggregators that turn accepted client recipes into the next
meta-recipe, as pure functions behind one interface (see docs/meta-recipes.md)."""

from fedseed.errors import AggregationError
from fedseed.meta.base import Aggregator, AggregatorState, ClientReply, Options, sample_assignment
from fedseed.meta.best import Best
from fedseed.meta.fedex import FedEx
from fedseed.meta.flora import Flora
from fedseed.meta.sha import SuccessiveHalving
from fedseed.meta.trajectory import TrajectoryAggregator

#: Aggregators selectable by name (run config ``aggregator``, ``--aggregator``).
AGGREGATORS: dict[str, type] = {"best": Best, "fedex": FedEx, "flora": Flora,
                                "sha": SuccessiveHalving, "trajectory": TrajectoryAggregator}


def get_aggregator(name: str, options: Options | None = None) -> Aggregator:
    """The aggregator called ``name``, with ``options``."""
    if name not in AGGREGATORS:
        raise AggregationError(f"unknown aggregator '{name}'; choose from "
                               f"{', '.join(sorted(AGGREGATORS))}")
    return AGGREGATORS[name](options or Options())


__all__ = ["AGGREGATORS", "Aggregator", "AggregatorState", "Best", "ClientReply", "FedEx",
           "Flora", "Options", "SuccessiveHalving", "TrajectoryAggregator", "get_aggregator",
           "sample_assignment"]
