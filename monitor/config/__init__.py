"""The config model (service, organisation, api, paging) and its checks."""
