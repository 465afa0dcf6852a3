# PostgreSQL where the official postgres image cannot be pulled: Debian bookworm's PostgreSQL 15 on
# the local Debian base, with the official image's interface that compose.yaml uses (POSTGRES_USER,
# POSTGRES_PASSWORD, POSTGRES_DB, /docker-entrypoint-initdb.d/*.sql, data in
# /var/lib/postgresql/data, `postgres -c ...` as the command, pg_isready for the health check).
ARG DEBIAN_IMAGE=chainchat-local/debian:bookworm
FROM ${DEBIAN_IMAGE}
ENV LANG=C.UTF-8 PATH=/usr/lib/postgresql/15/bin:$PATH PGDATA=/var/lib/postgresql/data
# uid 999 as in the official image (the package would pick any free system uid); the package's own
# cluster (/var/lib/postgresql/15/main) is removed: the entrypoint makes one in PGDATA
# bookworm is the pin: its security updates replace package versions, so none is written here
# hadolint ignore=DL3008
RUN groupadd --system --gid 999 postgres \
    && useradd --system --uid 999 --gid 999 --home-dir /var/lib/postgresql --no-create-home \
        --shell /bin/bash postgres \
    && apt-get update \
    && apt-get install -y --no-install-recommends postgresql-15 \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/lib/postgresql/15 /etc/postgresql/15 \
    && mkdir -p /var/lib/postgresql/data /docker-entrypoint-initdb.d /var/run/postgresql \
    && chown -R postgres:postgres /var/lib/postgresql /var/run/postgresql \
    && chmod 700 /var/lib/postgresql/data
COPY deploy/docker/local/postgres-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
USER 999:999
EXPOSE 5432
STOPSIGNAL SIGINT
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["postgres"]
