"""Compute kernels: numba Kendall tau-b and the batched torch population evaluator."""
