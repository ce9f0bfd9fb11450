#!/bin/sh
# Creates the local stack's credentials as compose secrets in docker/secrets/ (run once before
# `docker compose up`; an existing file is kept, so rerunning changes nothing). Random values, hex
# so that they fit a URL unescaped. Never in the image, never in argv: compose mounts each file at
# /run/secrets/<name>, and the containers read it (*_FILE variables, AWS_SHARED_CREDENTIALS_FILE,
# integrity.keyFile).
#
# Compose (without swarm) bind-mounts a secret file with its mode and owner on this host, so the
# files are 0644 (the containers run as other accounts: postgres 999, rookery 10001, MinIO root)
# inside a 0700 directory that only this host account can enter. docker/secrets/ is ignored by git
# and by the image build (.gitignore, .dockerignore).
set -eu
cd "$(dirname "$0")"
mkdir -p secrets
chmod 0700 secrets

hex() { od -An -tx1 -N"$1" /dev/urandom | tr -d ' \n'; }

# secret NAME VALUE: writes secrets/NAME unless it exists; prints the value in use.
secret() {
  if [ ! -s "secrets/$1" ]; then
    printf '%s\n' "$2" > "secrets/$1.tmp"
    mv "secrets/$1.tmp" "secrets/$1"
  fi
  chmod 0644 "secrets/$1"
  head -n 1 "secrets/$1"
}

# The superuser of the source databases (oltp-db, queue-db), whom rookery connects as (PGPASSWORD).
secret postgres_password "$(hex 24)" > /dev/null
# The catalog database's owner, and the URL the services read (ROOKERY_CATALOG_URL).
catalog_password=$(secret catalog_password "$(hex 24)")
secret catalog_url "postgres://rookery:${catalog_password}@catalog-db:5432/rookery" > /dev/null
# MinIO's root account, which rookery uses as its S3 credentials (AWS shared credentials file).
access_key=$(secret s3_access_key_id "rookery$(hex 4)")
secret_key=$(secret s3_secret_access_key "$(hex 24)")
secret s3_credentials "[default]
aws_access_key_id = ${access_key}
aws_secret_access_key = ${secret_key}" > /dev/null
# The key that signs manifests (integrity.keyFile): backups written by anyone without it are refused.
secret rookery_signing_key "$(hex 32)" > /dev/null
# The key the services sign their events with and check them against (events.signing, verifyKeys).
secret rookery_event_key "$(hex 32)" > /dev/null
# Bearer tokens (README "Service authentication"): the services' token file holds only hashes
# (sha256 in hex, as sha256sum prints it). Prometheus' token (an auditor's) is its own secret; the
# operator's is printed once, when the file is made, and kept nowhere.
token() { printf 'rky_%s_%s' "$1" "$(head -c 32 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"; }
token_line() { printf '%s sha256:%s %s\n' "$1" "$(printf '%s' "$2" | sha256sum | cut -d' ' -f1)" "$3"; }
if [ ! -s secrets/rookery_api_tokens ]; then
  prometheus_id=$(hex 6)
  prometheus_token=$(token "$prometheus_id")
  operator_id=$(hex 6)
  operator_token=$(token "$operator_id")
  printf '%s\n' "$prometheus_token" > secrets/prometheus_token.tmp
  mv secrets/prometheus_token.tmp secrets/prometheus_token
  {
    echo '# id hash principal roles [tiers] (rookery auth token create --file docker/secrets/rookery_api_tokens adds more)'
    token_line "$prometheus_id" "$prometheus_token" 'prometheus auditor'
    token_line "$operator_id" "$operator_token" 'operator operator'
  } > secrets/rookery_api_tokens.tmp
  mv secrets/rookery_api_tokens.tmp secrets/rookery_api_tokens
  echo "operator bearer token (shown once, not stored): $operator_token"
fi
chmod 0644 secrets/rookery_api_tokens secrets/prometheus_token
echo "docker/secrets: $(ls secrets | tr '\n' ' ')"
