"""Simulated devices and peers for the demo and the tests. They speak the same
protocols as the real devices and are never imported by the service itself."""
