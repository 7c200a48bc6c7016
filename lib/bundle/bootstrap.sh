# DIPS instance bootstrap: cloud-init runs it once, as root, on the instance's first boot.
# The stack's user data sets, above this text:
#   DIPS_ROLE            master | worker
#   DIPS_ASSET_URL       https URL of the bundle (a CDK asset in S3), DIPS_ASSET_SHA256 its checksum
#   DIPS_TOKEN_SECRET_ID the shared token's secret (ARN), DIPS_SECRETS_URL the Secrets Manager endpoint
#   AWS_REGION           the region, used to sign the requests
#   DIPS_SERVICE_ARGS    the dips command line; DIPS_SERVICE_ENV its environment, one NAME=value a line
#   DIPS_ADVERTISE_PORT  workers only: the port the master reaches them on, at this instance's private IP
# Canonical's image has neither the AWS CLI nor Node, and the bundle that brings Node sits in S3:
# curl (>= 7.75) signs the two AWS requests itself (SigV4) with the instance role's credentials,
# read from IMDSv2. DIPS_IMDS_URL and DIPS_INSTALL_ROOT exist for tests only.
set -euo pipefail
imds_url=${DIPS_IMDS_URL:-http://169.254.169.254}
root=${DIPS_INSTALL_ROOT:-}
install_dir=$root/opt/dips
unit=dips-$DIPS_ROLE.service

# Retries: a new instance profile's credentials and permissions can take seconds to appear.
imds_token=$(curl -fsS --retry 10 --retry-all-errors -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 600' "$imds_url/latest/api/token")
imds() { curl -fsS --retry 10 --retry-all-errors -H "X-aws-ec2-metadata-token: $imds_token" "$imds_url/latest/meta-data/$1"; }
json_field() { python3 -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }

credentials=$(imds "iam/security-credentials/$(imds iam/security-credentials/)")
# The credentials reach curl on stdin, not on its command line, so they never show in the process list.
aws_curl() {
  local service=$1
  shift
  printf 'user = "%s:%s"\nheader = "x-amz-security-token: %s"\n' "$(json_field AccessKeyId <<<"$credentials")" \
    "$(json_field SecretAccessKey <<<"$credentials")" "$(json_field Token <<<"$credentials")" |
    curl -fsS --retry 5 --retry-all-errors --config - --aws-sigv4 "aws:amz:$AWS_REGION:$service" "$@"
}

archive=$(mktemp)
trap 'rm -f "$archive"' EXIT
# S3 wants the payload's hash signed; a GET has the empty payload.
aws_curl s3 -H 'x-amz-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855' \
  -o "$archive" "$DIPS_ASSET_URL"
echo "$DIPS_ASSET_SHA256  $archive" | sha256sum --check --quiet --status ||
  { echo "dips bootstrap: the bundle's sha256 differs from the one in the stack: not installing it" >&2; exit 1; }
rm -rf "$install_dir"
mkdir -p "$install_dir"
tar -xzf "$archive" -C "$install_dir" --no-same-owner

token=$(aws_curl secretsmanager -X POST -H 'Content-Type: application/x-amz-json-1.1' \
  -H 'X-Amz-Target: secretsmanager.GetSecretValue' --data "{\"SecretId\":\"$DIPS_TOKEN_SECRET_ID\"}" \
  "$DIPS_SECRETS_URL" | json_field SecretString)

mkdir -p "$root/etc/dips" "$root/etc/systemd/system"
# Only root (and systemd) reads the token: the service gets it through EnvironmentFile.
(
  umask 077
  {
    echo "DIPS_TOKEN=$token"
    echo "$DIPS_SERVICE_ENV"
    if [ -n "${DIPS_ADVERTISE_PORT:-}" ]; then echo "DIPS_WORKER_ADDRESS=http://$(imds local-ipv4):$DIPS_ADVERTISE_PORT"; fi
    # A worker runs one sharp task per vCPU and each needs a libuv thread; Node sizes that pool at
    # start-up only, from the environment (docs/cluster.md). Twice the vCPUs, at least 4.
    if [ "$DIPS_ROLE" = worker ]; then echo "UV_THREADPOOL_SIZE=$(( $(nproc) * 2 > 4 ? $(nproc) * 2 : 4 ))"; fi
  } >"$root/etc/dips/dips.env"
)
cat >"$root/etc/systemd/system/$unit" <<UNIT
[Unit]
Description=DIPS $DIPS_ROLE
Wants=network-online.target
After=network-online.target

[Service]
User=dips
EnvironmentFile=/etc/dips/dips.env
ExecStart=/opt/dips/bin/node /opt/dips/dist/services/cli/main.js $DIPS_SERVICE_ARGS
Restart=always
RestartSec=2
StateDirectory=dips
WorkingDirectory=/var/lib/dips
LimitNOFILE=65536
NoNewPrivileges=yes
ProtectSystem=strict
ProtectHome=yes
PrivateTmp=yes

[Install]
WantedBy=multi-user.target
UNIT

if [ -z "$root" ]; then
  id dips >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin dips
  systemctl daemon-reload
  systemctl enable --now "$unit"
fi
