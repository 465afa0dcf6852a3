# The project's IPFS node (deploy/ipfs-node: Helia, the subset of Kubo's RPC API the files service
# uses, and a path gateway). It stands in for ipfs/kubo where that image cannot be pulled
# (deploy/docker/compose.local.yaml); production keeps Kubo. The repository lives in /data/ipfs.
ARG NODE_IMAGE=chainchat-local/node:24-bookworm
FROM ${NODE_IMAGE}
WORKDIR /opt/ipfs-node
COPY deploy/ipfs-node/package.json deploy/ipfs-node/package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund --loglevel=error \
    && npm cache clean --force \
    && groupadd --system --gid 10005 ipfs \
    && useradd --system --uid 10005 --gid 10005 --no-create-home --shell /usr/sbin/nologin ipfs \
    && mkdir -p /data/ipfs && chown 10005:10005 /data/ipfs
COPY deploy/ipfs-node/src ./src
USER 10005:10005
EXPOSE 5001 8080
ENTRYPOINT ["node", "/opt/ipfs-node/src/server.js"]
CMD ["--repo", "/data/ipfs", "--host", "0.0.0.0", "--api-port", "5001", "--gateway-port", "8080"]
