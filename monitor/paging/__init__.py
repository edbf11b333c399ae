"""Paging: the event inbox, escalation, paging state, the outbox and its exactly-once marks, delivery, channels, messages, rosters, rate limits, ack links, the shift hand-off."""
