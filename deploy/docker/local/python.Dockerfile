# A Python 3.11 base built from Debian bookworm's packages, for machines that cannot pull the official
# python:3.11.x-slim-bookworm image (deploy/docker/local-bases.sh builds it as
# chainchat-local/python:3.11-bookworm). Same interface as the official image: `python` and `pip` on
# PATH, pip installs without --break-system-packages, CA certificates for PyPI.
ARG DEBIAN_IMAGE=chainchat-local/debian:bookworm
FROM ${DEBIAN_IMAGE}
# SSL_CERT_FILE: uv, like pip here, trusts the system bundle (with any CA local-bases.sh added)
ENV LANG=C.UTF-8 SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
# bookworm is the pin: its security updates replace package versions, so none is written here
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3.11 python3.11-venv python3-pip ca-certificates \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin \
    && ln -s /usr/bin/python3.11 /usr/local/bin/python \
    && ln -s /usr/bin/python3.11 /usr/local/bin/python3 \
    && rm -f /usr/lib/python3.11/EXTERNALLY-MANAGED
CMD ["python3"]
