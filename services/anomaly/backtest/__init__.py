"""Backtests: proposed settings scored over a series or the stored history."""
