# syntax=docker/dockerfile:1
#
# smokescreen: a two-stage build.
#   1. build: compile the release binary with the Rust toolchain, exactly as
#      CI does (--locked: the versions in Cargo.lock, nothing newer).
#   2. runtime: Debian slim with just the binary and the default ACL,
#      running as an unprivileged user.
#
# Why Debian slim and not a static musl binary on scratch: the proxy resolves
# names with the system resolver (getaddrinfo). glibc's resolver reads
# /etc/resolv.conf, /etc/hosts and nsswitch.conf as every other program on a
# Fly machine does (Fly's private DNS at fdaa::3 included); musl's resolver
# behaves differently (search domains, no TCP fallback in older releases).
# Slim also keeps a shell for `fly ssh console`. Both stages use bookworm, so
# the binary runs against the glibc it was linked with.

FROM rust:1.95-bookworm AS build
WORKDIR /src

# Dependency layer: build every dependency against placeholder sources, so a
# change to our code does not recompile the crates.io dependencies.
COPY Cargo.toml Cargo.lock ./
RUN mkdir src \
    && echo 'fn main() {}' > src/main.rs \
    && touch src/lib.rs \
    && cargo build --release --locked \
    && rm -rf src

# The real sources. `touch` makes them newer than the placeholders' build
# (COPY keeps the build context's timestamps), so cargo rebuilds our crate.
# build.rs and link/ put the start-up code together in the binary (less
# code resident at rest; see build.rs).
COPY build.rs ./
COPY link ./link
COPY src ./src
RUN touch src/main.rs src/lib.rs \
    && cargo build --release --locked \
    && cp target/release/smokescreen /usr/local/bin/smokescreen

FROM debian:bookworm-slim AS runtime
# A fixed, unprivileged uid/gid: the proxy needs no privileges (4750 and
# 9810 are above 1024) and must not be able to write anywhere it should not.
RUN groupadd --system --gid 10001 smokescreen \
    && useradd --system --uid 10001 --gid 10001 --no-create-home \
       --home-dir /nonexistent --shell /usr/sbin/nologin smokescreen
COPY --from=build /usr/local/bin/smokescreen /usr/local/bin/smokescreen
# The Fly example's ACL. Replace this file (or mount your own) to change policy;
# `smokescreen check-config --egress-acl-file FILE` checks one before you deploy.
COPY src/default-acl.yaml /etc/smokescreen/acl.yaml
USER 10001:10001
# 4750: the proxy. 9810: Prometheus metrics and /healthz (private; see fly.toml).
EXPOSE 4750 9810
# PROXY_PASSWORD comes from the environment (on Fly: `fly secrets set`).
CMD ["smokescreen", "--egress-acl-file", "/etc/smokescreen/acl.yaml", "--expose-prometheus-metrics"]
