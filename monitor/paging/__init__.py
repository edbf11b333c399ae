"""Paging: escalation, channels, messages, rosters, rate limits, ack links, the shift hand-off report."""
