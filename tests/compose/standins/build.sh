#!/usr/bin/env bash
# Builds local stand-ins for the public images that compose.yaml names, into the Docker engine at
# $DOCKER_HOST (no public registry is reachable here). Each image is built only when the engine lacks it.
#
#   python:3.11-slim-bookworm     Debian bookworm (debootstrap minbase) with its Python 3.11 and venv;
#                                 the base of deploy/Dockerfile, tagged with the public name it stands for
#   standin/kafka:4.1.1           Debian's JRE 17 with the Apache Kafka 4.1.1 jars from Maven Central (what
#                                 the test harness resolves) and an entry script that honours the KAFKA_*
#                                 variables as apache/kafka does; /opt/kafka/bin/*.sh wrappers for the tools
#   standin/prometheus:v2.55.1    Debian's prometheus binary (the host's package) on the same base
#   standin/alertmanager:v0.27.0  Debian's alertmanager binary (the host's prometheus-alertmanager) on the
#                                 same base
#
# Grafana has no source here: it has no stand-in (the compose test leaves it out and says so).
# Needs root (debootstrap), debootstrap, and the Kafka jars: .venv/bin/python tests/harness/kafka.py resolve
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../../.." && pwd)
work="$repo/.cache/standins"
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

PYTHON_IMAGE=python:3.11-slim-bookworm
KAFKA_IMAGE=standin/kafka:4.1.1
PROMETHEUS_IMAGE=standin/prometheus:v2.55.1
ALERTMANAGER_IMAGE=standin/alertmanager:v0.27.0

have() { docker image inspect "$1" >/dev/null 2>&1; }
say() { printf 'standins: %s\n' "$*" >&2; }

if ! have "$PYTHON_IMAGE"; then
    say "building $PYTHON_IMAGE with debootstrap (bookworm, minbase) from $mirror"
    root="$work/rootfs"
    rm -rf "$root" && mkdir -p "$root"
    debootstrap --variant=minbase --include=python3,python3-venv,python-is-python3,ca-certificates,passwd \
        bookworm "$root" "$mirror" >"$work/debootstrap.log" 2>&1 || { tail -20 "$work/debootstrap.log"; exit 1; }
    # This machine reaches the package registries through a proxy that re-signs TLS: the image carries the
    # host's CA bundle, and pip is told to use it (the host's own pip configuration does the same).
    cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
    printf '[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n' >"$root/etc/pip.conf"
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/usr/share/doc/* "$root"/usr/share/man/*
    tar -C "$root" -c . | docker import \
        -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8' \
        -c 'CMD ["python3"]' - "$PYTHON_IMAGE" >/dev/null
    rm -rf "$root"
fi

if ! have "$KAFKA_IMAGE"; then
    libs="$repo/.cache/kafka-4.1.1/libs"
    ls "$libs"/kafka-tools-4.1.1.jar >/dev/null || { say "no Kafka jars in $libs: run tests/harness/kafka.py resolve"; exit 1; }
    say "building $KAFKA_IMAGE from $libs"
    ctx="$work/kafka"
    rm -rf "$ctx" && mkdir -p "$ctx" && cp -r "$here/kafka/." "$ctx/" && cp -r "$libs" "$ctx/libs"
    docker build --force-rm -q -t "$KAFKA_IMAGE" "$ctx" >"$work/kafka-build.log" 2>&1 || { tail -30 "$work/kafka-build.log"; exit 1; }
    rm -rf "$ctx"
fi

if ! have "$PROMETHEUS_IMAGE"; then
    binary=$(command -v prometheus) || { say "no prometheus binary: apt-get install prometheus"; exit 1; }
    say "building $PROMETHEUS_IMAGE from $binary ($("$binary" --version 2>&1 | head -1))"
    ctx="$work/prometheus"
    rm -rf "$ctx" && mkdir -p "$ctx" && cp -r "$here/prometheus/." "$ctx/" && cp "$binary" "$ctx/prometheus"
    docker build --force-rm -q -t "$PROMETHEUS_IMAGE" "$ctx" >"$work/prometheus-build.log" 2>&1 || { tail -30 "$work/prometheus-build.log"; exit 1; }
    rm -rf "$ctx"
fi
if ! have "$ALERTMANAGER_IMAGE"; then
    binary=$(command -v prometheus-alertmanager) || { say "no alertmanager binary: apt-get install prometheus-alertmanager"; exit 1; }
    say "building $ALERTMANAGER_IMAGE from $binary ($("$binary" --version 2>&1 | head -1))"
    ctx="$work/alertmanager"
    rm -rf "$ctx" && mkdir -p "$ctx" && cp -r "$here/alertmanager/." "$ctx/" && cp "$binary" "$ctx/alertmanager" \
        && cp -r /usr/share/prometheus/alertmanager "$ctx/share"  # Debian's build reads its templates there
    docker build --force-rm -q -t "$ALERTMANAGER_IMAGE" "$ctx" >"$work/alertmanager-build.log" 2>&1 || { tail -30 "$work/alertmanager-build.log"; exit 1; }
    rm -rf "$ctx"
fi
say "ready: $PYTHON_IMAGE $KAFKA_IMAGE $PROMETHEUS_IMAGE $ALERTMANAGER_IMAGE"
