set -eu
user=$1 prefix=$2
REDISCLI_AUTH="$(cat /run/secrets/redis_admin)"; export REDISCLI_AUTH
for attempt in $(seq 1 60); do
    [ "$(redis-cli -h "$REDIS_HOST" PING 2>/dev/null)" = PONG ] && break; sleep 1
done
replies=$({
    printf 'ACL SETUSER %s reset on >%s ~%s* &%s* +@all -@dangerous\n' \
        "$user" "$(cat /run/secrets/redis_password)" "$prefix" "$prefix"
    echo 'ACL SAVE'
} | redis-cli -h "$REDIS_HOST" 2>&1)
[ "$replies" = "$(printf 'OK\nOK')" ] || { echo "redis refused: $replies" >&2; exit 1; }
echo "redis user $user: keys and channels $prefix*"
