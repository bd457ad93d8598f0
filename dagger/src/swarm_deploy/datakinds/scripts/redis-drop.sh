set -eu
user=$1 prefix=$2
REDISCLI_AUTH="$(cat /run/secrets/redis_admin)"; export REDISCLI_AUTH
redis-cli -h "$REDIS_HOST" --scan --pattern "$prefix*" \
    | xargs -r -d '\n' -n 100 redis-cli -h "$REDIS_HOST" UNLINK >/dev/null
redis-cli -h "$REDIS_HOST" ACL DELUSER "$user" >/dev/null
[ "$(redis-cli -h "$REDIS_HOST" ACL SAVE)" = OK ]
echo "dropped the keys $prefix* and user $user"
