# Build stage: the full Rust toolchain, with libpq for the PostgreSQL backend.
FROM rust:1-bookworm AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends libpq-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src

# Dependencies first, in a layer of their own: it is rebuilt only when Cargo.toml or
# Cargo.lock change, not on every change of src/ (a stub crate stands in for the real one).
COPY Cargo.toml Cargo.lock build.rs ./
RUN mkdir -p src migrations \
    && echo 'fn main() {}' > src/main.rs \
    && touch src/lib.rs \
    && cargo build --release --locked --bin hris-sync \
    && rm -rf src

# The service itself.
COPY migrations migrations
COPY src src
# The stub's build outputs are older than the real sources: make cargo rebuild the crate.
RUN touch src/main.rs src/lib.rs build.rs \
    && cargo build --release --locked --bin hris-sync

# Runtime stage: a slim Debian with only the shared libraries the binary links.
FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends libpq5 ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /var/lib/hris-sync --create-home hris-sync
COPY --from=build /src/target/release/hris-sync /usr/local/bin/hris-sync
# Runs as uid 10001: a bind-mounted data directory must be writable by it
# (`sudo chown 10001 ./data`); a named volume is set up by the image.
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
