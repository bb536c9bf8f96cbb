# The pecd container image: a Debian base plus the pecd binary built outside it.
#
#   cargo build --release -p pecd
#   docker build -t pecd .
#   docker run -v pecd-data:/var/lib/pecd -v /etc/pecd:/etc/pecd:ro pecd
#
# Build arguments:
#   BASE  the base image (default debian:bookworm-slim; the lab builds its own with
#         interop/base-image.sh, since its machines have no image registry)
#   PECD  the binary to copy, relative to the build context (default the release build)
#   UID   the numeric id of the unprivileged user pecd runs as
ARG BASE=debian:bookworm-slim
FROM ${BASE}
ARG PECD=target/release/pecd
ARG UID=10025

# OpenSSL 3 and the CA bundle are all pecd needs at run time; a base that has them
# (the lab's) needs no package index.
RUN if [ "$(dpkg-query -W -f='${db:Status-Status}\n' libssl3 ca-certificates 2>/dev/null | grep -cx installed)" != 2 ]; then \
        apt-get update \
        && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends libssl3 ca-certificates \
        && rm -rf /var/lib/apt/lists/*; \
    fi \
    && useradd --system --uid "${UID}" --home-dir /var/lib/pecd --create-home --shell /usr/sbin/nologin pecd \
    && mkdir -p /etc/pecd

COPY ${PECD} /usr/local/bin/pecd
COPY conf/pecd.toml /etc/pecd/pecd.toml.example

USER pecd
WORKDIR /var/lib/pecd
VOLUME ["/var/lib/pecd"]
# SMTP submission (465 TLS, 587 STARTTLS), MX (25), IMAP (993, 143), POP3 (995),
# HTTP autoconfig and metrics (80), HTTPS (443). Binding below 1024 needs no
# capability: Docker lets containers bind every port by default.
EXPOSE 25 465 587 143 993 995 80 443
ENTRYPOINT ["/usr/local/bin/pecd"]
CMD ["--config", "/etc/pecd/pecd.toml", "serve"]
