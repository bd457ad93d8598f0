#!/bin/sh
# The official image builds redis with protected mode off; Debian's has it on.
set -eu
if [ "$1" = redis-server ]; then
    exec "$@" --protected-mode no
fi
exec "$@"
