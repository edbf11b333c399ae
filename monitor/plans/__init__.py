"""The plan model, levels and clocks; built-in plans in builtin/*.yml."""
