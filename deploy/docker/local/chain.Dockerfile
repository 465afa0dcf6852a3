# Ganache where trufflesuite/ganache cannot be pulled: the npm package at the version
# deploy/node-tools/package-lock.json pins (npm ci), on the Node base. Ganache keeps its state in /data.
ARG NODE_IMAGE=chainchat-local/node:24-bookworm

# ---- the lock's tools (the same layers as maildev.Dockerfile's, so built once), pruned to ganache
FROM ${NODE_IMAGE} AS tools
WORKDIR /opt/tools
COPY deploy/node-tools/package.json deploy/node-tools/package-lock.json ./
COPY deploy/docker/local/keep-only.js /usr/local/lib/keep-only.js
RUN npm ci --no-audit --no-fund --loglevel=error
RUN node /usr/local/lib/keep-only.js ganache && npm prune --no-audit --no-fund --loglevel=error

FROM ${NODE_IMAGE}
RUN groupadd --system --gid 10003 ganache \
    && useradd --system --uid 10003 --gid 10003 --no-create-home --shell /usr/sbin/nologin ganache \
    && mkdir -p /data && chown 10003:10003 /data
COPY --from=tools /opt/tools/node_modules /opt/ganache/node_modules
USER 10003:10003
EXPOSE 8545
ENTRYPOINT ["node", "/opt/ganache/node_modules/ganache/dist/node/cli.js"]
CMD ["--server.host=0.0.0.0", "--database.dbPath=/data"]
