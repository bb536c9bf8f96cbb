#!/bin/sh
# Starts PostgreSQL 15 in the lab's "postgres" container (HA profile): one database
# "pecd" owned by role "pecd" (password from /lab/postgres.password), reachable from the
# lab network with SCRAM passwords. The cluster lives in the container: `down` drops it.
set -eu
bin=/usr/lib/postgresql/15/bin
data=/var/lib/postgresql/lab
net=$(ip -4 route show scope link | awk '{print $1; exit}')
if [ ! -f "$data/PG_VERSION" ]; then
    install -d -o postgres -g postgres -m 700 "$data"
    cp /lab/postgres.password /tmp/pwfile
    chown postgres /tmp/pwfile
    su postgres -s /bin/sh -c "$bin/initdb -D $data -U postgres --auth-local=trust --auth-host=scram-sha-256 --pwfile=/tmp/pwfile" >/dev/null
    rm -f /tmp/pwfile
    echo "host all all $net scram-sha-256" >> "$data/pg_hba.conf"
    su postgres -s /bin/sh -c "$bin/pg_ctl -D $data -o '-c listen_addresses=' -w start" >/dev/null
    su postgres -s /bin/sh -c "$bin/psql -q -v ON_ERROR_STOP=1 -h /var/run/postgresql postgres" <<SQL
CREATE ROLE pecd LOGIN PASSWORD '$(cat /lab/postgres.password)';
CREATE DATABASE pecd OWNER pecd;
SQL
    su postgres -s /bin/sh -c "$bin/pg_ctl -D $data -m fast -w stop" >/dev/null
fi
install -d -o postgres -g postgres /var/run/postgresql
exec su postgres -s /bin/sh -c "exec $bin/postgres -D $data -c listen_addresses='*'"
