#!/bin/sh
# Entrypoint of the app image: Docker's `_FILE` convention for the variables rookery reads that
# hold secrets. VAR_FILE=/run/secrets/NAME sets VAR to that file's content (a trailing newline
# dropped) and unsets VAR_FILE, then runs the command. Values go through the environment only,
# never argv (`export` is a shell builtin); the compose file names files, never values.
set -eu
for var in PGPASSWORD ROOKERY_CATALOG_URL ROOKERY_ENCRYPTION_KEY; do
  eval "file=\${${var}_FILE-}"
  [ -n "$file" ] || continue
  if ! value=$(cat -- "$file"); then
    echo "rookery-secrets-env: cannot read ${var}_FILE '$file' (is the compose secret mounted and readable?)" >&2
    exit 1
  fi
  export "$var=$value"
  unset "${var}_FILE"
done
exec "$@"
