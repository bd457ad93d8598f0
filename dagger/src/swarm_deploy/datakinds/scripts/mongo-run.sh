set -eu
export ROLE="$1"; shift; export DATABASES="$*"
for attempt in $(seq 1 60); do
    mongosh --quiet --host "$MONGO_HOST" --eval 'db.runCommand({ping: 1}).ok' >/dev/null 2>&1 \
        && break
    sleep 1
done
exec mongosh --quiet --host "$MONGO_HOST" --eval "$0"
