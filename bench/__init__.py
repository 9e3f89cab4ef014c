"""Benchmarks against the issue's budgets: ``python -m bench`` runs them all (see README.md)."""
