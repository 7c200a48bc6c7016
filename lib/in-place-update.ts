import { Duration, Stack } from 'aws-cdk-lib';
import * as ssm from 'aws-cdk-lib/aws-ssm';
import { Construct, type IDependable } from 'constructs';
import type { BundleRelease } from './bundle-release.js';

export interface InPlaceUpdateProps {
  releases: BundleRelease[];
  /** The instances carry this tag (key dips:stack); the association targets them by it. */
  stackTag: string;
  /** Created after these: the first run finds booted instances. */
  after: IDependable[];
}

export const STACK_TAG_KEY = 'dips:stack';
/** CloudFormation waits this long for every instance to install a new bundle and answer its health check. */
export const UPDATE_TIMEOUT = Duration.minutes(15);

/**
 * New code reaches running instances in place: an SSM association runs `dips-boot update` on every
 * instance of the stack, one at a time, whenever a bundle version changes (the versions are in its
 * command, so a new one updates the association, which runs it). The deploy waits for every run to
 * succeed and fails (and rolls back) when one does not.
 */
export class InPlaceUpdate extends Construct {
  readonly association: ssm.CfnAssociation;

  constructor(scope: Construct, id: string, props: InPlaceUpdateProps) {
    super(scope, id);
    const versions = props.releases.map((release) => `${release.arch}=${release.version}`).join(' ');
    this.association = new ssm.CfnAssociation(this, 'Association', {
      associationName: `${Stack.of(this).stackName}-update`,
      name: 'AWS-RunShellScript',
      targets: [{ key: `tag:${STACK_TAG_KEY}`, values: [props.stackTag] }],
      parameters: { commands: [`/usr/local/sbin/dips-boot update # bundles ${versions}`] },
      maxConcurrency: '1',
      maxErrors: '0',
      waitForSuccessTimeoutSeconds: UPDATE_TIMEOUT.toSeconds(),
    });
    for (const dependency of props.after) this.association.node.addDependency(dependency);
  }
}
