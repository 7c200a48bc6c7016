import { Duration, Stack } from 'aws-cdk-lib';
import * as ssm from 'aws-cdk-lib/aws-ssm';
import { Construct } from 'constructs';
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
    association;
    constructor(scope, id, props) {
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
        for (const dependency of props.after)
            this.association.node.addDependency(dependency);
    }
}
//# sourceMappingURL=in-place-update.js.map