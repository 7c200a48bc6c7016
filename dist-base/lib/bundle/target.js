/** The CPU architectures DIPS instances run on, in Node's naming (process.arch). */
export const BUNDLE_ARCHS = ['x64', 'arm64'];
/** What differs per architecture: Canonical's AMI parameter and the ELF machine of its binaries. */
export const ARCH_FACTS = {
    // Canonical's public SSM parameters for Ubuntu 24.04 LTS.
    x64: { ubuntuAmiParameter: '/aws/service/canonical/ubuntu/server/24.04/stable/current/amd64/hvm/ebs-gp3/ami-id', elfMachine: 0x3e, label: 'x86-64' },
    arm64: { ubuntuAmiParameter: '/aws/service/canonical/ubuntu/server/24.04/stable/current/arm64/hvm/ebs-gp3/ami-id', elfMachine: 0xb7, label: 'arm64 (Graviton)' },
};
/**
 * The architecture of an EC2 instance type, from its family name: Graviton families carry a "g"
 * after the generation digit (t4g, m7g, c7gn, r8g, g5g), x86 ones do not (t3, m7i, c7a, g5).
 */
export function archOfInstanceType(instanceType) {
    const family = instanceType.split('.')[0] ?? '';
    return /^[a-z]+\d+g[a-z]*$/.test(family) ? 'arm64' : 'x64';
}
//# sourceMappingURL=target.js.map