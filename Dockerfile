# Build stage: the full Rust toolchain, with libpq for the PostgreSQL backend.
FROM rust:1-bookworm AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends libpq-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin hris-sync

# Runtime stage: a slim Debian with only the shared libraries the binary links.
FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends libpq5 ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /var/lib/hris-sync --create-home hris-sync
COPY --from=build /src/target/release/hris-sync /usr/local/bin/hris-sync
USER hris-sync
WORKDIR /var/lib/hris-sync
# The embedded SQLite file lives on this volume; set DATABASE_URL=postgres://… to use PostgreSQL.
VOLUME ["/var/lib/hris-sync"]
ENV HRIS_SYNC_BIND=0.0.0.0:8080 \
    DATABASE_URL=sqlite:///var/lib/hris-sync/hris-sync.db \
    RUST_LOG=info
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s --retries=3 \
    CMD curl -fsS http://127.0.0.1:8080/healthz || exit 1
ENTRYPOINT ["hris-sync"]
CMD ["serve"]
