"""hallmon: monitoring and alerting for service halls and ports."""
