# DIPS instance bootstrap. cloud-init runs it once as root on first boot (`boot`); it keeps a copy
# as /usr/local/sbin/dips-boot, which the stack's SSM association runs as `dips-boot update` when
# the bundle changes (in-place update: no new instance, the master's state stays).
# Workers also run `dips-boot drain-watch` (a systemd unit): when the group terminates the instance,
# the worker drains before the termination lifecycle hook is completed.
# The stack's user data sets, above this text (names and ARNs only: nothing here changes with code):
#   DIPS_ROLE              master | worker
#   DIPS_STACK_NAME, DIPS_SIGNAL_RESOURCE   the stack and the resource this boot signals (CloudFormation)
#   DIPS_BUNDLE_PARAMETER  SSM parameter holding "<bundle https URL> <version>": the current bundle version
#   DIPS_SECRET_IDS        NAME=secret ARN, one a line: each becomes NAME=<secret> in the service's environment
#   AWS_REGION             the region, used to sign the requests; DIPS_*_URL its endpoints
#   DIPS_SERVICE_ARGS      the dips command line; DIPS_SERVICE_ENV its environment, one NAME=value a line
#   DIPS_NODE_ARGS         optional: node's flags before the entry point (a worker's: services/worker/node-args.ts)
#   DIPS_HEALTH_URL        what must answer 200 before the boot counts as a success
#   DIPS_ADVERTISE_PORT    workers only: the port the master reaches them on, at this instance's private IP
#   DIPS_DATA_VOLUME_ID    master only: the EBS volume holding /var/lib/dips (survives the instance); this
#                          script attaches it, taking it over from the master this one replaces
#   DIPS_LOG_GROUP         CloudWatch Logs group for the boot log and the service log
#   DIPS_WORKER_GROUP      workers only: their Auto Scaling group (to complete the drain lifecycle hook)
# Canonical's image has neither the AWS CLI nor Node, and the bundle that brings Node sits in S3:
# curl (>= 7.75) signs the AWS requests itself (SigV4) with the instance role's credentials from
# IMDSv2. DIPS_IMDS_URL, DIPS_INSTALL_ROOT, DIPS_POLL_SECONDS and DIPS_RETRY_* exist for tests.
set -Euo pipefail
mode=${1:-boot}
imds_url=${DIPS_IMDS_URL:-http://169.254.169.254}
root=${DIPS_INSTALL_ROOT:-}
install_dir=$root/opt/dips
unit=dips-$DIPS_ROLE.service
# Retries: a new instance profile's credentials and permissions can take seconds to appear (about
# 30 s of curl's doubling backoff by default; DIPS_RETRY_MAX_SECONDS caps the wait of each request).
retries=${DIPS_RETRY_COUNT:-10}
retry_max=${DIPS_RETRY_MAX_SECONDS:-60}
retry=(--retry "$retries" --retry-all-errors --retry-max-time "$retry_max")
health_seconds=${DIPS_HEALTH_SECONDS:-180}

step='starting'
instance_id=unknown
# The master this boot took the data volume from, while the boot has not succeeded.
taken_from=''
credentials=''
json_field() { python3 -c 'import json, sys
value = json.load(sys.stdin)
for key in sys.argv[1:]: value = value[key]
print(value)' "$@"; }

# The credentials reach curl on stdin, not on its command line, so they never show in the process list.
# curl_credentials is curl's config for them, made once per credentials read (read_credentials).
curl_credentials=''
read_credentials() {
  credentials=$(imds "iam/security-credentials/$(imds iam/security-credentials/)")
  curl_credentials=$(python3 -c 'import json, sys
value = json.load(sys.stdin)
print("user = \"%s:%s\"\nheader = \"x-amz-security-token: %s\"" % (value["AccessKeyId"], value["SecretAccessKey"], value["Token"]))' <<<"$credentials")
}
aws_curl() {
  local service=$1
  shift
  curl -fsS "${retry[@]}" --config - --aws-sigv4 "aws:amz:$AWS_REGION:$service" "$@" <<<"$curl_credentials"
}
aws_json() { # service target url body: the JSON 1.1 protocol of Secrets Manager and SSM
  aws_curl "$1" -X POST -H 'Content-Type: application/x-amz-json-1.1' -H "X-Amz-Target: $2" --data "$4" "$3"
}

# Tells CloudFormation how the boot went. SignalResource has no reason field, so the reason rides
# in the signal's unique id (at most 64 characters), which the stack's events show.
signal() {
  local status=$1 reason=${2:-}
  # A signal nobody waits for (a worker the scaler added later) is refused: try briefly only.
  local retry=(--retry 2 --retry-all-errors --retry-max-time 20)
  [ "$mode" = boot ] && [ -n "${DIPS_SIGNAL_RESOURCE:-}" ] && [ -n "$credentials" ] || return 0
  local unique_id="$instance_id"
  [ -z "$reason" ] || unique_id="$instance_id ${reason//[^A-Za-z0-9 ._:\/-]/_}"
  aws_curl cloudformation --data-urlencode 'Action=SignalResource' --data-urlencode 'Version=2010-05-15' \
    --data-urlencode "StackName=$DIPS_STACK_NAME" --data-urlencode "LogicalResourceId=$DIPS_SIGNAL_RESOURCE" \
    --data-urlencode "UniqueId=${unique_id:0:64}" --data-urlencode "Status=$status" "$DIPS_CFN_URL" >/dev/null ||
    echo "dips-boot: could not signal $status to CloudFormation" >&2
}

fail() {
  local reason=$1
  # In a command substitution the trap fires too: leave the report to the script itself.
  [ "$BASHPID" = "$$" ] || exit 1
  trap - ERR
  echo "dips-boot: FAILED $reason" >&2
  [ -z "$taken_from" ] || give_back_data_volume || echo "dips-boot: could not give $DIPS_DATA_VOLUME_ID back to $taken_from" >&2
  signal FAILURE "$reason"
  exit 1
}
# Any failing command fails the boot loudly, naming the step it was in.
trap 'fail "$step failed ($BASH_COMMAND: exit $?)"' ERR

step='reading IMDSv2'
imds_token=$(curl -fsS "${retry[@]}" -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 600' "$imds_url/latest/api/token")
imds() { curl -fsS "${retry[@]}" -H "X-aws-ec2-metadata-token: $imds_token" "$imds_url/latest/meta-data/$1"; }
instance_id=$(imds instance-id)
read_credentials

if [ "$mode" = drain-watch ]; then
  step='watching for termination'
  # The group announces a termination in IMDS; the stop drains the worker (TimeoutStopSec below).
  until [ "$(curl -fsS -H "X-aws-ec2-metadata-token: $imds_token" "$imds_url/latest/meta-data/autoscaling/target-lifecycle-state" 2>/dev/null)" = Terminated ]; do
    sleep 5
  done
  step='draining'
  systemctl stop "$unit" || echo "dips-boot: $unit did not stop cleanly" >&2
  read_credentials
  aws_curl autoscaling --data-urlencode 'Action=CompleteLifecycleAction' --data-urlencode 'Version=2011-01-01' \
    --data-urlencode "AutoScalingGroupName=$DIPS_WORKER_GROUP" --data-urlencode 'LifecycleHookName=dips-drain' \
    --data-urlencode "InstanceId=$instance_id" --data-urlencode 'LifecycleActionResult=CONTINUE' "$DIPS_AUTOSCALING_URL" >/dev/null
  exit 0
fi

# The master's data volume is attached here, not by CloudFormation, which creates a replacement
# master before it deletes the old one: the new master stops the old one (its service stops first,
# so SQLite closes cleanly), detaches the volume and attaches it to itself. If this boot then fails,
# the volume goes back and the old master is started again, so the rollback finds it as it was.
# IAM lets the master do this to its own volume and to instances tagged as this stack's master only.
poll=${DIPS_POLL_SECONDS:-5}
ec2() { aws_curl ec2 --data-urlencode "Action=$1" --data-urlencode 'Version=2016-11-15' "${@:2}" "$DIPS_EC2_URL"; }
xml_field() { python3 -c 'import sys, xml.etree.ElementTree as ET
root = ET.fromstring(sys.stdin.read())
for element in root.iter(): element.tag = element.tag.split("}")[-1]
found = root.find(sys.argv[1])
print("" if found is None else (found.text or ""))' "$1"; }
volume_field() { ec2 DescribeVolumes --data-urlencode "VolumeId.1=$DIPS_DATA_VOLUME_ID" | xml_field "volumeSet/item/$1"; }
instance_state() { ec2 DescribeInstances --data-urlencode "InstanceId.1=$1" | xml_field reservationSet/item/instancesSet/item/instanceState/name; }
wait_until() { # what seconds wanted command...: polls until the command prints `wanted`
  local what=$1 deadline=$((SECONDS + $2)) wanted=$3
  shift 3
  until [ "$("$@")" = "$wanted" ]; do
    [ "$SECONDS" -lt "$deadline" ] || fail "timed out waiting for $what"
    sleep "$poll"
  done
}
move_data_volume() { # from to: detaches the volume from `from` (if any) and attaches it to `to`
  if [ -n "$1" ]; then
    ec2 DetachVolume --data-urlencode "VolumeId=$DIPS_DATA_VOLUME_ID" --data-urlencode "InstanceId=$1" >/dev/null
    wait_until "$DIPS_DATA_VOLUME_ID to detach from $1" 300 available volume_field status
  fi
  ec2 AttachVolume --data-urlencode "VolumeId=$DIPS_DATA_VOLUME_ID" --data-urlencode "InstanceId=$2" --data-urlencode 'Device=/dev/sdf' >/dev/null
  wait_until "$DIPS_DATA_VOLUME_ID to attach to $2" 300 attached volume_field attachmentSet/item/status
}
give_back_data_volume() {
  local previous=$taken_from
  taken_from=''
  echo "dips-boot: giving $DIPS_DATA_VOLUME_ID back to $previous and starting it again"
  if [ -z "$root" ]; then
    systemctl stop "$unit" 2>/dev/null || true
    ! mountpoint -q /var/lib/dips || umount /var/lib/dips
  fi
  move_data_volume "$instance_id" "$previous"
  ec2 StartInstances --data-urlencode "InstanceId.1=$previous" >/dev/null
}
if [ "$mode" = boot ] && [ -n "${DIPS_DATA_VOLUME_ID:-}" ]; then
  step="taking over the data volume $DIPS_DATA_VOLUME_ID"
  holder=$(volume_field attachmentSet/item/instanceId)
  if [ -n "$holder" ] && [ "$holder" != "$instance_id" ]; then
    echo "dips-boot: stopping the previous master $holder, which holds $DIPS_DATA_VOLUME_ID"
    ec2 StopInstances --data-urlencode "InstanceId.1=$holder" >/dev/null
    taken_from=$holder
    # Its service stops first (TimeoutStopSec), then the OS.
    wait_until "the previous master $holder to stop" 600 stopped instance_state "$holder"
  fi
  [ "$holder" = "$instance_id" ] || move_data_volume "$holder" "$instance_id"
fi

if [ "$mode" = boot ] && [ -z "$root" ]; then
  step='installing the CloudWatch agent'
  # The boot log (this script's output, in cloud-init-output.log) and the service log, kept by the stack's log group.
  agent_arch=$(dpkg --print-architecture)
  curl -fsS "${retry[@]}" -o /tmp/cloudwatch-agent.deb \
    "https://amazoncloudwatch-agent-$AWS_REGION.s3.$AWS_REGION.amazonaws.com/ubuntu/$agent_arch/latest/amazon-cloudwatch-agent.deb"
  dpkg -i -E /tmp/cloudwatch-agent.deb >/dev/null
  mkdir -p /var/log/dips
  cat >/opt/aws/amazon-cloudwatch-agent/etc/dips.json <<AGENT
{"logs": {"logs_collected": {"files": {"collect_list": [
  {"file_path": "/var/log/cloud-init-output.log", "log_group_name": "$DIPS_LOG_GROUP", "log_stream_name": "{instance_id}/boot"},
  {"file_path": "/var/log/dips/$DIPS_ROLE.log", "log_group_name": "$DIPS_LOG_GROUP", "log_stream_name": "{instance_id}/$DIPS_ROLE"}
]}}}}
AGENT
  /opt/aws/amazon-cloudwatch-agent/bin/amazon-cloudwatch-agent-ctl -a fetch-config -m ec2 -s \
    -c file:/opt/aws/amazon-cloudwatch-agent/etc/dips.json >/dev/null

  if [ -n "${DIPS_DATA_VOLUME_ID:-}" ]; then
    step="mounting the data volume $DIPS_DATA_VOLUME_ID"
    # Nitro instances name EBS volumes by id; an unformatted volume is a new one: format it.
    device=/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_${DIPS_DATA_VOLUME_ID/-/}
    for _ in $(seq 120); do [ -e "$device" ] && break; sleep 1; done
    [ -e "$device" ] || fail "data volume $DIPS_DATA_VOLUME_ID did not appear as $device within 120 s"
    blkid "$device" >/dev/null || mkfs.ext4 -q -L dips-data "$device"
    mkdir -p /var/lib/dips
    grep -q ' /var/lib/dips ' /etc/fstab || echo "$device /var/lib/dips ext4 defaults,nofail 0 2" >>/etc/fstab
    mountpoint -q /var/lib/dips || mount /var/lib/dips
  fi
  id dips >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin dips
  [ -z "${DIPS_DATA_VOLUME_ID:-}" ] || chown dips:dips /var/lib/dips
  install -m 700 "$0" /usr/local/sbin/dips-boot
fi

step="reading the bundle version ($DIPS_BUNDLE_PARAMETER)"
installed=$(cat "$install_dir/BUNDLE_VERSION" 2>/dev/null || true)
version=$(aws_json ssm AmazonSSM.GetParameter "$DIPS_SSM_URL" "{\"Name\":\"$DIPS_BUNDLE_PARAMETER\"}" | json_field Parameter Value)
read -r bundle_url bundle_version <<<"$version"
if [ "$mode" = update ] && [ "$bundle_version" = "$installed" ] && [ -z "${DIPS_FORCE_UPDATE:-}" ]; then
  echo "dips-boot: bundle $bundle_version is already installed"
  exit 0
fi

step='downloading the bundle'
archive=$(mktemp)
trap 'rm -f "$archive"; rm -rf "$install_dir.next"' EXIT
# S3 wants the payload's hash signed; a GET has the empty payload.
aws_curl s3 -H 'x-amz-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855' -o "$archive" "$bundle_url"
# Unpacked beside the running one, then swapped: an update never leaves a half-written /opt/dips.
rm -rf "$install_dir.next"
mkdir -p "$install_dir.next"
tar -xzf "$archive" -C "$install_dir.next" --no-same-owner
# The archive names its own version (its inputs' hash, as the stack does): another object under
# that key, or an archive built from inputs changed since synth, is refused.
[ "$(cat "$install_dir.next/BUNDLE_VERSION" 2>/dev/null)" = "$bundle_version" ] ||
  fail "bundle version differs from the stack's: not installed"

step='reading the secrets'
secrets=''
while IFS='=' read -r name secret_id; do
  [ -n "$name" ] || continue
  value=$(aws_json secretsmanager secretsmanager.GetSecretValue "$DIPS_SECRETS_URL" "{\"SecretId\":\"$secret_id\"}" | json_field SecretString)
  secrets+="$name=$value"$'\n'
done <<<"$DIPS_SECRET_IDS"

step='installing the bundle'
mkdir -p "$root/etc/dips" "$root/etc/systemd/system"
rm -rf "$install_dir.previous"
[ ! -e "$install_dir" ] || mv "$install_dir" "$install_dir.previous"
mv "$install_dir.next" "$install_dir"

# Only root (and systemd) reads the secrets: the service gets them through EnvironmentFile.
(
  umask 077
  {
    printf '%s' "$secrets"
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
ExecStart=/opt/dips/bin/node ${DIPS_NODE_ARGS:+$DIPS_NODE_ARGS }/opt/dips/dist/services/cli/main.js $DIPS_SERVICE_ARGS
Restart=always
RestartSec=2
# A stopping worker drains (finishes what it holds); the master resumes from SQLite on restart.
TimeoutStopSec=120
StandardOutput=append:/var/log/dips/$DIPS_ROLE.log
StandardError=append:/var/log/dips/$DIPS_ROLE.log
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

if [ "$DIPS_ROLE" = worker ]; then
  cat >"$root/etc/systemd/system/dips-drain.service" <<UNIT
[Unit]
Description=DIPS: drain the worker before the Auto Scaling group terminates this instance
[Service]
ExecStart=/usr/local/sbin/dips-boot drain-watch
Restart=always
RestartSec=5
[Install]
WantedBy=multi-user.target
UNIT
fi

if [ -z "$root" ]; then
  step="starting $unit"
  systemctl daemon-reload
  systemctl enable "$unit" >/dev/null 2>&1
  systemctl restart "$unit"
  [ "$DIPS_ROLE" != worker ] || systemctl enable --now dips-drain.service >/dev/null 2>&1
fi

step="waiting for $DIPS_HEALTH_URL"
deadline=$((SECONDS + health_seconds))
until curl -fsS -o /dev/null --max-time 5 "$DIPS_HEALTH_URL"; do
  [ "$SECONDS" -lt "$deadline" ] || fail "service unhealthy: no answer from $DIPS_HEALTH_URL within $health_seconds s"
  sleep 2
done
echo "dips-boot: $DIPS_ROLE $mode done, bundle $bundle_version"
taken_from=''
signal SUCCESS
