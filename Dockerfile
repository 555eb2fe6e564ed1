# walg container image: the walg binary on Debian 12 (bookworm), run as a non-root user.
#
#   docker build -t walg:0.1.0 .
#   docker build -t walg:0.1.0 \
#     --build-arg WALG_GIT_REVISION="$(git rev-parse --short HEAD)" \
#     --build-arg WALG_BUILD_DATE="$(date -u +%Y-%m-%d)" .
#   docker build -t walg:0.1.0 --build-arg WALG_UID=26 --build-arg WALG_GID=26 .
#
# The default user is uid/gid 999, the `postgres` user of Debian's packages and of the official
# postgres image, so that walg can read the data directory PostgreSQL writes. Change it with the
# WALG_UID / WALG_GID build args to match your PostgreSQL image, and keep `runAsUser` /
# `runAsGroup` in the Kubernetes manifests the same.
#
# The runtime stage is debian:bookworm-slim rather than distroless because the Kubernetes
# manifests copy the binary into the postgres container with `cp` (an initContainer), which needs
# a shell tool. The binary links only glibc and libgcc_s, so it also runs inside the Debian-based
# postgres images (postgres:15-bookworm and newer Debian releases), not inside Alpine ones.
# See docs/kubernetes.md.

# --- build ----------------------------------------------------------------------------------
FROM rust:1.95-bookworm AS build

# Shown by `walg --version`; both default to "unknown".
ARG WALG_GIT_REVISION=unknown
ARG WALG_BUILD_DATE=unknown

WORKDIR /src
# Only what the release binary needs: the manifest, the lock file and the sources.
COPY Cargo.toml Cargo.lock ./
COPY src ./src
RUN cargo build --release --locked --bin walg \
 && cp target/release/walg /walg

# --- runtime --------------------------------------------------------------------------------
FROM debian:bookworm-slim

ARG WALG_UID=999
ARG WALG_GID=999

# ca-certificates: walg verifies the S3 endpoint's TLS certificate against the system's roots.
# Not pinned to a version: the newest root certificates are wanted.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid "${WALG_GID}" postgres \
 && useradd --system --uid "${WALG_UID}" --gid "${WALG_GID}" \
      --home-dir /var/lib/postgresql --no-create-home --shell /usr/sbin/nologin postgres

COPY --from=build /walg /usr/local/bin/walg

# Numeric, so that Kubernetes can check runAsNonRoot.
USER ${WALG_UID}:${WALG_GID}

ENTRYPOINT ["walg"]
CMD ["schedule"]
