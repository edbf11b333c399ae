"""Scheduler, checker, fault tracker, reading series for /metrics."""
