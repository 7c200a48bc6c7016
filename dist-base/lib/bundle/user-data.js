import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Aws } from 'aws-cdk-lib';
import { repoRoot } from './repo-root.js';
/** The shell script (lib/bundle/bootstrap.sh) that installs the bundle and starts the role's service. */
export const BOOTSTRAP_SCRIPT = path.join(repoRoot(), 'lib', 'bundle', 'bootstrap.sh');
const endpoint = (service) => `https://${service}.${Aws.REGION}.${Aws.URL_SUFFIX}/`;
/**
 * Adds the boot to `userData`: the bootstrap script with its inputs set in front. It carries names
 * and ARNs only, never a secret and never the bundle's version, so a code change leaves it (and the
 * master) alone.
 */
export function addBootCommands(userData, props) {
    const lines = (record) => Object.entries(record).map(([name, value]) => `${name}=${value}`).join('\n');
    userData.addCommands(`DIPS_ROLE=${props.role}`, `DIPS_STACK_NAME=${Aws.STACK_NAME}`, `DIPS_SIGNAL_RESOURCE=${props.signalResource}`, `DIPS_BUNDLE_PARAMETER='${props.bundleParameterName}'`, `DIPS_SECRET_IDS='${lines(props.secrets)}'`, `AWS_REGION=${Aws.REGION}`, `DIPS_SSM_URL='${endpoint('ssm')}'`, `DIPS_SECRETS_URL='${endpoint('secretsmanager')}'`, `DIPS_CFN_URL='${endpoint('cloudformation')}'`, `DIPS_AUTOSCALING_URL='${endpoint('autoscaling')}'`, `DIPS_EC2_URL='${endpoint('ec2')}'`, `DIPS_SERVICE_ARGS='${props.serviceArgs}'`, ...(props.nodeArgs === undefined ? [] : [`DIPS_NODE_ARGS='${props.nodeArgs}'`]), `DIPS_SERVICE_ENV='${lines(props.serviceEnv)}'`, `DIPS_HEALTH_URL='${props.healthUrl}'`, `DIPS_LOG_GROUP='${props.logGroupName}'`, ...(props.advertisePort === undefined ? [] : [`DIPS_ADVERTISE_PORT=${props.advertisePort}`]), ...(props.workerGroupName === undefined ? [] : [`DIPS_WORKER_GROUP=${props.workerGroupName}`]), ...(props.dataVolumeId === undefined ? [] : [`DIPS_DATA_VOLUME_ID=${props.dataVolumeId}`]), withoutCommentLines(readFileSync(BOOTSTRAP_SCRIPT, 'utf8')));
}
/** The script without its comment lines: EC2 takes 16 KB of user data, and the comments are for readers of bootstrap.sh. */
function withoutCommentLines(script) {
    return script
        .split('\n')
        .filter((line) => !/^\s*#/.test(line))
        .join('\n');
}
//# sourceMappingURL=user-data.js.map