"""Flower shells: the fedseed ServerApp and ClientApp (Message API, flwr >= 1.42).

Thin on purpose: they move recipe bytes between Flower messages and
:mod:`fedseed.federation`, which holds the logic and knows nothing about Flower.
"""
