# hallmon's image: the package on a slim Python, run as an unprivileged user.
#   docker build -t hallmon .   (docker-compose: deploy/docker-compose.yml)
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /opt/hallmon
COPY pyproject.toml README.md ./
COPY monitor ./monitor
COPY probes ./probes
COPY simulators ./simulators
RUN pip install . \
    && useradd --system --uid 10001 --home-dir /nonexistent --shell /usr/sbin/nologin hallmon

USER 10001:10001
EXPOSE 9108
HEALTHCHECK --interval=30s --timeout=5s --retries=3 \
    CMD ["python", "-c", "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:9108/healthz', timeout=4)"]
ENTRYPOINT ["hallmon", "--log-format", "json"]
CMD ["run", "-c", "/etc/hallmon/hallmon.yml"]
