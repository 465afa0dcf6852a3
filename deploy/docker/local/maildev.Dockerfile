# maildev where maildev/maildev cannot be pulled: the npm package at the version
# deploy/node-tools/package-lock.json pins (npm ci), on the Node base. SMTP on 1025, web UI and REST
# API on 1080, as in the official image; the package's own health check (compose.local.yaml runs it).
ARG NODE_IMAGE=chainchat-local/node:24-bookworm

# ---- the lock's tools (the same layers as chain.Dockerfile's, so built once), pruned to maildev
FROM ${NODE_IMAGE} AS tools
WORKDIR /opt/tools
COPY deploy/node-tools/package.json deploy/node-tools/package-lock.json ./
COPY deploy/docker/local/keep-only.js /usr/local/lib/keep-only.js
RUN npm ci --no-audit --no-fund --loglevel=error
RUN node /usr/local/lib/keep-only.js maildev && npm prune --no-audit --no-fund --loglevel=error

FROM ${NODE_IMAGE}
RUN groupadd --system --gid 10004 maildev \
    && useradd --system --uid 10004 --gid 10004 --no-create-home --shell /usr/sbin/nologin maildev
COPY --from=tools /opt/tools/node_modules /opt/maildev/node_modules
USER 10004:10004
EXPOSE 1025 1080
ENTRYPOINT ["node", "/opt/maildev/node_modules/maildev/dist/bin/maildev.js"]
CMD ["--smtp", "1025", "--web", "1080", "--ip", "0.0.0.0", "--web-ip", "0.0.0.0"]
