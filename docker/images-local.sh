#!/usr/bin/env bash
# Local stand-ins for the upstream images the compose stack uses, built from Debian packages, for
# machines that cannot pull from an image registry (ours: only the package mirrors answer).
#
#   docker/images-local.sh          # make images-local; then make up/test-docker IMAGES=local
#
# 1. a Debian bookworm minbase root filesystem (debootstrap, from the mirror apt uses here),
#    imported as $LOCAL_PREFIX/debian:bookworm;
# 2. on it, with apt inside a build: python (Debian's 3.11 in a venv, so `python` and `pip` behave
#    as in python:3.11-slim), redis (Debian's redis-server 7) and rabbitmq (rabbitmq-server 3);
# 3. a wheelhouse in docker/wheels: inside a build pip cannot verify PyPI's certificate here (the
#    host trusts extra local CAs a fresh image does not), so the project image installs from it
#    (build argument WHEELHOUSE) with --no-index. It is filled by a throwaway container of the
#    python stand-in given the host's CA bundle read-only; no image is built with it.
# 4. docker/local.env names the images for compose and make (IMAGES=local includes it).
#
# Each image is built once; FORCE=1 rebuilds them. Needs root for debootstrap, and a running
# engine (docker/engine.sh start).
set -euo pipefail
cd "$(dirname "$0")/.."

LOCAL_PREFIX=${LOCAL_PREFIX:-jobbench-local}
SUITE=bookworm
BASE_IMAGE="$LOCAL_PREFIX/debian:$SUITE"
PYTHON_IMAGE="$LOCAL_PREFIX/python:3.11"
REDIS_IMAGE="$LOCAL_PREFIX/redis:7"
RABBITMQ_IMAGE="$LOCAL_PREFIX/rabbitmq:3"
WHEELHOUSE=docker/wheels
ENV_FILE=docker/local.env
#: The Python that builds the project's own wheel for the wheelhouse.
PYTHON=${PYTHON:-.venv/bin/python}
FORCE=${FORCE:-0}
# The legacy builder: no buildx here, and these Dockerfiles need nothing newer.
export DOCKER_BUILDKIT=0

say() { echo "images-local: $*" >&2; }
die() { say "$*"; exit 2; }

have_image() { [ "$FORCE" != 1 ] && docker image inspect "$1" >/dev/null 2>&1; }

#: The Debian mirror apt uses on this host (DEBIAN_MIRROR overrides it).
debian_mirror() {
    if [ -n "${DEBIAN_MIRROR:-}" ]; then echo "$DEBIAN_MIRROR"; return; fi
    local found=""
    if compgen -G "/etc/apt/sources.list.d/*.sources" >/dev/null; then
        # deb822: the URIs of the first stanza whose Suites include $SUITE.
        found=$(awk -v suite="$SUITE" '
            /^$/ { if (uris && hit) { print uris; exit } uris = ""; hit = 0 }
            /^URIs:/ { uris = $2 }
            /^Suites:/ { for (i = 2; i <= NF; i++) if ($i == suite) hit = 1 }
            END { if (uris && hit) print uris }' /etc/apt/sources.list.d/*.sources | head -n 1)
    fi
    if [ -z "$found" ] && [ -f /etc/apt/sources.list ]; then
        found=$(awk -v suite="$SUITE" '$1 == "deb" {
            for (i = 2; i <= NF; i++) if ($i !~ /^\[/ && $i !~ /\]$/) { url = $i; break }
            if ($(i + 1) == suite) { print url; exit } }' /etc/apt/sources.list)
    fi
    [ -n "$found" ] || die "no Debian $SUITE mirror in /etc/apt/sources.list{,.d}: set DEBIAN_MIRROR"
    echo "$found"
}

build_base() {
    if have_image "$BASE_IMAGE"; then say "$BASE_IMAGE: present"; return; fi
    [ "$(id -u)" = 0 ] || die "debootstrap needs root"
    if ! command -v debootstrap >/dev/null; then
        say "installing debootstrap (apt-get)"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            debootstrap >/dev/null
    fi
    local mirror rootfs
    mirror=$(debian_mirror)
    rootfs=$(mktemp -d /tmp/jobbench-rootfs.XXXXXX)
    # shellcheck disable=SC2064  # expand now: the trap must remove this very directory
    trap "rm -rf '$rootfs'" EXIT
    say "$BASE_IMAGE: debootstrap --variant=minbase $SUITE from $mirror"
    debootstrap --variant=minbase "$SUITE" "$rootfs" "$mirror" >/tmp/jobbench-debootstrap.log 2>&1 \
        || { tail -n 20 /tmp/jobbench-debootstrap.log >&2; die "debootstrap failed"; }
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
    tar -C "$rootfs" -c . | docker import --change 'CMD ["bash"]' - "$BASE_IMAGE" >/dev/null
    rm -rf "$rootfs"
    trap - EXIT
}

build_on_base() { # name dockerfile
    local name=$1 dockerfile=$2
    if have_image "$name"; then say "$name: present"; return; fi
    say "$name: building from $dockerfile"
    docker build -q --build-arg "BASE_IMAGE=$BASE_IMAGE" -t "$name" -f "$dockerfile" docker/local \
        >/dev/null
}

#: The host's CA bundle (it trusts the local CAs of /usr/local/share/ca-certificates).
HOST_CA_BUNDLE=${HOST_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}

build_wheelhouse() {
    [ -x "$PYTHON" ] || die "no $PYTHON: run make install first (or set PYTHON)"
    [ -r "$HOST_CA_BUNDLE" ] || die "no CA bundle at $HOST_CA_BUNDLE: set HOST_CA_BUNDLE"
    # The dependencies change only with pyproject.toml and the python image.
    local stamp="$WHEELHOUSE/.built-for" want
    want="$(sha256sum pyproject.toml | cut -c1-16) $(docker image inspect -f '{{.Id}}' "$PYTHON_IMAGE")"
    if [ "$FORCE" != 1 ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
        say "$WHEELHOUSE: present"
        return
    fi
    local build
    build=$(mktemp -d /tmp/jobbench-wheel.XXXXXX)
    say "$WHEELHOUSE: the project's wheel (host), its dependencies (pip in $PYTHON_IMAGE)"
    "$PYTHON" -m pip wheel -q --disable-pip-version-check --no-deps -w "$build" . \
        2> >(grep -v "^WARNING: Location" >&2)
    find "$WHEELHOUSE" -name '*.whl' -delete
    # The dependencies are resolved by the image's own pip and Python: markers can name the exact
    # version (redis needs async-timeout below Python 3.11.3, and Debian's is 3.11.2). That pip
    # reaches PyPI with the host's CA bundle, mounted read-only into this throwaway container
    # only: the image users get never holds it.
    docker run --rm --user "$(id -u):$(id -g)" -e HOME=/tmp -e PIP_DISABLE_PIP_VERSION_CHECK=1 \
        -e PIP_CERT=/run/host-ca.crt -v "$HOST_CA_BUNDLE:/run/host-ca.crt:ro" \
        -v "$build:/build:ro" -v "$PWD/$WHEELHOUSE:/wheels" "$PYTHON_IMAGE" \
        sh -c 'pip wheel -q -w /wheels /build/jobbench-*.whl "setuptools>=77"'
    # The project itself is built from source in the image (pip install .), never from here.
    rm -rf "$build" "$WHEELHOUSE"/jobbench-*.whl
    echo "$want" >"$stamp"
}

write_env() {
    cat >"$ENV_FILE" <<ENV
# Written by docker/images-local.sh: the local stand-ins (make ... IMAGES=local includes this).
PYTHON_IMAGE=$PYTHON_IMAGE
REDIS_IMAGE=$REDIS_IMAGE
RABBITMQ_IMAGE=$RABBITMQ_IMAGE
WHEELHOUSE=$WHEELHOUSE
ENV
}

docker info >/dev/null 2>&1 || die "no Docker engine answers: docker/engine.sh start"
started=$(date +%s)
build_base
build_on_base "$PYTHON_IMAGE" docker/local/python.Dockerfile
build_on_base "$REDIS_IMAGE" docker/local/redis.Dockerfile
build_on_base "$RABBITMQ_IMAGE" docker/local/rabbitmq.Dockerfile
build_wheelhouse
write_env
say "done in $(($(date +%s) - started)) s: $ENV_FILE"
