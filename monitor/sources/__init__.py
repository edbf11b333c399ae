"""Alert sources beside the probes and Alertmanager: Zabbix's webhook, SNMP traps."""
