"""Differential privacy for what fedseed clients send: the mechanisms
(:mod:`fedseed.privacy.mechanisms`) and the accountant that tracks what they spend
(:mod:`fedseed.privacy.accountant`). See ``docs/privacy.md``."""
