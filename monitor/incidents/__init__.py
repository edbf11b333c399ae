"""Incidents: the router, the store, report drafts, incident metrics."""
