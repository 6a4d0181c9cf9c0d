"""fedseed: federated personalization in which only small signed recipes travel."""

__version__ = "0.1.0"
