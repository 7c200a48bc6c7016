import { Stack, Token } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import { ARCH_FACTS } from './bundle/target.js';
import { DipsConfigError } from './config.js';
/**
 * Ubuntu 24.04 for `arch`, pinned: the AMI id given in context, or Canonical's SSM parameter looked
 * up once at synth and cached in cdk.context.json. Never resolved at deploy time, so a new Canonical
 * release moves nothing until the deployer clears the cache (`cdk context --reset <key>`).
 */
export function pinnedUbuntu(scope, arch, amiId, contextName) {
    if (amiId)
        return { getImage: () => ({ imageId: amiId, osType: ec2.OperatingSystemType.LINUX, userData: ec2.UserData.forLinux() }) };
    const stack = Stack.of(scope);
    if (Token.isUnresolved(stack.account) || Token.isUnresolved(stack.region)) {
        throw new DipsConfigError(`the ${ARCH_FACTS[arch].label} Ubuntu image is looked up once and kept in cdk.context.json: that needs AWS credentials (account and region) at synth, or give it with -c ${contextName}=ami-...`);
    }
    return ec2.MachineImage.fromSsmParameter(ARCH_FACTS[arch].ubuntuAmiParameter, { cachedInContext: true });
}
//# sourceMappingURL=machine-image.js.map