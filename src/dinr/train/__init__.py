"""Distributed stochastic optimisation of the field over MPI ranks."""
