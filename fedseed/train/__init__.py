"""Local training: a recipe and a device's data become trained weights and evidence."""

from fedseed.train.loop import Progress, ProgressFn, TrainResult, batch_order, train
from fedseed.train.schedule import lr_multiplier

__all__ = ["Progress", "ProgressFn", "TrainResult", "batch_order", "lr_multiplier", "train"]
