"""Seed trajectories: a shared model as ``w0 - sum_k c_k z_k``, learned by
zeroth-order steps along a fixed pool of seeded perturbations and rebuilt anywhere
by exact replay (see docs/seed-trajectories.md)."""
