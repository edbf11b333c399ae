"""Typed values used everywhere: alerts, readings, targets, errors, time, secrets, working days, the YAML loader."""
