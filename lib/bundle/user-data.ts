import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Aws } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import type * as s3assets from 'aws-cdk-lib/aws-s3-assets';
import type * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { repoRoot } from './repo-root.js';

export interface BootUserDataProps {
  role: 'master' | 'worker';
  bundle: s3assets.Asset;
  bundleSha256: string;
  token: secretsmanager.ISecret;
  /** The dips command line, e.g. `worker --port 12345 --master http://10.0.0.5:8080`. */
  serviceArgs: string;
  /** The service's environment besides DIPS_TOKEN, which boot reads from Secrets Manager. */
  serviceEnv: Record<string, string>;
  /** Workers: the port to advertise at the instance's private IP (DIPS_WORKER_ADDRESS, known at boot only). */
  advertisePort?: number;
}

/** The shell script (lib/bundle/bootstrap.sh) that installs the bundle and starts the role's service. */
export const BOOTSTRAP_SCRIPT = path.join(repoRoot(), 'lib', 'bundle', 'bootstrap.sh');

/**
 * User data: the bootstrap script with its inputs set in front. It carries names and ARNs only,
 * never the token: the instance reads that from Secrets Manager at boot.
 */
export function bootUserData(props: BootUserDataProps): ec2.UserData {
  const env = Object.entries(props.serviceEnv).map(([name, value]) => `${name}=${value}`);
  const userData = ec2.UserData.forLinux();
  userData.addCommands(
    `DIPS_ROLE=${props.role}`,
    `DIPS_ASSET_URL='https://${props.bundle.s3BucketName}.s3.${Aws.REGION}.${Aws.URL_SUFFIX}/${props.bundle.s3ObjectKey}'`,
    `DIPS_ASSET_SHA256=${props.bundleSha256}`,
    `DIPS_TOKEN_SECRET_ID='${props.token.secretArn}'`,
    `DIPS_SECRETS_URL='https://secretsmanager.${Aws.REGION}.${Aws.URL_SUFFIX}/'`,
    `AWS_REGION=${Aws.REGION}`,
    `DIPS_SERVICE_ARGS='${props.serviceArgs}'`,
    `DIPS_SERVICE_ENV='${env.join('\n')}'`,
    ...(props.advertisePort === undefined ? [] : [`DIPS_ADVERTISE_PORT=${props.advertisePort}`]),
    readFileSync(BOOTSTRAP_SCRIPT, 'utf8'),
  );
  return userData;
}
