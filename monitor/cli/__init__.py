"""The `hallmon` commands and the demo."""
