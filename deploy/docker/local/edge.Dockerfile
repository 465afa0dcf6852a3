# The edge (nginx in front of the gateways) where the official nginx image cannot be pulled: Debian
# bookworm's nginx on the local Debian base, unprivileged, with compose.yaml's server block mounted at
# /etc/nginx/conf.d/default.conf as in the official image; wget for compose's health check.
ARG DEBIAN_IMAGE=chainchat-local/debian:bookworm
FROM ${DEBIAN_IMAGE}
# bookworm is the pin: its security updates replace package versions, so none is written here
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends nginx wget \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /etc/nginx/sites-enabled /etc/nginx/conf.d/* \
    && groupadd --system --gid 10006 edge \
    && useradd --system --uid 10006 --gid 10006 --no-create-home --shell /usr/sbin/nologin edge
COPY deploy/docker/local/edge.nginx-main.conf /etc/nginx/nginx.conf
USER 10006:10006
EXPOSE 8000
STOPSIGNAL SIGQUIT
ENTRYPOINT ["nginx", "-e", "stderr", "-g", "daemon off;"]
