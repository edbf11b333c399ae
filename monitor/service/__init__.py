"""The aiohttp app, runtime and reload, HTTP API, OpenAPI."""
