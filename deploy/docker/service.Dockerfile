# One image for the five Python services; the command picks the service (python -m chainchat_<name>).
FROM python:3.11-slim AS base
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 UV_PROJECT_ENVIRONMENT=/opt/venv UV_COMPILE_BYTECODE=1
RUN pip install --no-cache-dir "uv==0.13.9"
WORKDIR /app
COPY pyproject.toml uv.lock README.md ./
COPY protocol ./protocol
COPY sdk ./sdk
COPY services ./services
COPY deploy/devstack ./deploy/devstack
RUN uv sync --frozen --no-dev --no-editable \
    && useradd --system --uid 10001 --home /app chainchat \
    && mkdir -p /data && chown chainchat /data
USER chainchat
ENV PATH=/opt/venv/bin:$PATH CHAINCHAT_VAR=/data HTTP_HOST=0.0.0.0
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --retries=6 CMD python -c "import os,urllib.request; urllib.request.urlopen(f'http://127.0.0.1:{os.environ.get(\"HTTP_PORT\",\"8000\")}/healthz', timeout=2)"
CMD ["python", "-m", "chainchat_gateway"]
