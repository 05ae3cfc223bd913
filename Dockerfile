# syntax=docker/dockerfile:1
# suanli container images, one target each (README: "Packaging: container
# images"). Built with BuildKit (Docker 23+ uses it by default):
#
#   docker build --target coordinator -t suanli-coordinator .
#   docker build --target node -t suanli-node .                        # GPU driver from the host (NVIDIA toolkit)
#   docker build --target node --build-arg MESA=1 -t suanli-node:lavapipe .  # + Mesa: lavapipe on the CPU
#
# Not built in CI (no Docker engine there); scripts/check-dockerfile.sh
# checks what it can without one: the flags, paths and ports below against
# deploy/ and the CLI's source.

ARG RUST_VERSION=1.95
ARG DEBIAN_RELEASE=bookworm

# ---- build: the one `suanli` binary (coordinator, node and client) ----
FROM rust:${RUST_VERSION}-${DEBIAN_RELEASE} AS builder
WORKDIR /src
# The whole workspace: cargo loads every member, and the CLI embeds files
# from examples/ (`suanli new`). .dockerignore keeps target/ and .git out.
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p suanli \
    && install -m 0755 target/release/suanli /usr/local/bin/suanli

# ---- common runtime: Debian slim, a non-root user, the binary ----
FROM debian:${DEBIAN_RELEASE}-slim AS runtime
# Packages unpinned (hadolint DL3008): a stable release's archive keeps only
# the current (security-fixed) version, so a pinned one stops installing.
# hadolint ignore=DL3008
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 suanli \
    && useradd --system --uid 10001 --gid suanli --home-dir /var/lib/suanli \
        --no-create-home --shell /usr/sbin/nologin suanli \
    && install -d -o suanli -g suanli -m 0700 /var/lib/suanli \
    && install -d -m 0755 /etc/suanli
COPY --from=builder /usr/local/bin/suanli /usr/local/bin/suanli
# SIGTERM: the coordinator closes connections and exits 0; the node drains
# (give it `docker stop -t` / stop_grace_period as long as its longest job).
STOPSIGNAL SIGTERM

# ---- coordinator: QUIC on UDP 7878, state in /var/lib/suanli ----
FROM runtime AS coordinator
# deploy/coordinator.toml: listen = "0.0.0.0:7878", data =
# "/var/lib/suanli/coordinator", every other setting at its default. Mount
# your own over it, or append flags: `docker run IMAGE --retention 30d`.
COPY deploy/coordinator.toml /etc/suanli/coordinator.toml
RUN install -d -o suanli -g suanli -m 0700 /var/lib/suanli/coordinator
USER 10001:10001
VOLUME ["/var/lib/suanli"]
# QUIC is UDP: publish with `-p 7878:7878/udp`. 9100/tcp is for `--http
# 0.0.0.0:9100` (metrics and dashboard) where the coordinator has that flag.
EXPOSE 7878/udp 9100/tcp
ENTRYPOINT ["suanli", "coordinator", "--config", "/etc/suanli/coordinator.toml"]

# ---- node: the Vulkan loader; the driver comes from the host or Mesa ----
FROM runtime AS node
# MESA=1 adds Mesa's Vulkan drivers (lavapipe runs compute on the CPU, plus
# the open drivers for AMD and Intel GPUs). Leave it 0 for NVIDIA: the
# NVIDIA container toolkit mounts the host's driver and its ICD file.
ARG MESA=0
# libvulkan1: the Vulkan loader that wgpu opens. libglvnd0: libGLdispatch,
# which NVIDIA's Vulkan driver library links against and the toolkit does
# not mount (it belongs to glvnd, not to the driver).
# hadolint ignore=DL3008
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends libvulkan1 libglvnd0 \
    && if [ "$MESA" = 1 ]; then \
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends mesa-vulkan-drivers; \
    fi \
    && rm -rf /var/lib/apt/lists/* \
    && install -d -o suanli -g suanli -m 0700 /var/lib/suanli/node
# The toolkit mounts the Vulkan ICD (/etc/vulkan/icd.d/nvidia_icd.json) only
# with the `graphics` capability; compute and utility are its defaults.
ENV NVIDIA_DRIVER_CAPABILITIES=compute,utility,graphics
# Mesa's device-select layer is not needed by a headless node (the project's
# scripts and tests turn it off too).
ENV NODEVICE_SELECT=1
USER 10001:10001
VOLUME ["/var/lib/suanli"]
# For `--http 0.0.0.0:9464` (/metrics, /healthz, /readyz); a node needs no
# inbound port otherwise (it dials the coordinator over UDP).
EXPOSE 9464/tcp
# The node's file (deploy/node.toml: address, fingerprint, token-file, data =
# "/var/lib/suanli/node", gpu, slots, caps) is site-specific: mount it at
# /etc/suanli/node.toml with its token file, or give flags and SUANLI_*
# variables instead of this CMD.
ENTRYPOINT ["suanli", "node"]
CMD ["--config", "/etc/suanli/node.toml"]
