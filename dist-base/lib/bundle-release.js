import path from 'node:path';
import { Aws, Stack } from 'aws-cdk-lib';
import * as ssm from 'aws-cdk-lib/aws-ssm';
import { Construct } from 'constructs';
/** The default command: `node dist/lib/bundle/main.js <arch> --version <hash>` (cdk.json compiles first). */
export const bundleCommandOf = (repoRoot) => (arch, version) => [process.execPath, path.join(repoRoot, 'dist', 'lib', 'bundle', 'main.js'), arch, '--version', version];
/**
 * One architecture's bundle as a CDK file asset, plus the SSM parameter that names the current
 * version ("<https URL> <version>"). Instances read the parameter at boot and on in-place updates,
 * so the user data stays the same when the code changes, and they refuse an archive whose
 * BUNDLE_VERSION is not that version.
 *
 * The asset is an *external* one (the asset manifest names a command, not a file): no CDK command
 * builds it while synthesizing. The CLI passes the same context (`aws:cdk:bundling-stacks: ["**"]`)
 * to synth, diff and deploy, so bundling-time cannot tell a diff from a deploy; publishing can. So
 * `cdk ls`, `cdk destroy`, `cdk diff` and `cdk synth` never build, and the template names the same
 * version whichever command made it.
 */
export class BundleRelease extends Construct {
    parameter;
    /** The parameter's name, as text: the same for every version, so it can sit in user data. */
    parameterName;
    /** The archive in the CDK bootstrap bucket: what the instances may read. */
    objectArn;
    version;
    arch;
    constructor(scope, id, props) {
        super(scope, id);
        this.arch = props.arch;
        this.version = props.version;
        const location = Stack.of(this).synthesizer.addFileAsset({
            sourceHash: props.version,
            executable: props.command(props.arch, props.version),
            displayName: `DIPS bundle ${props.arch}`,
        });
        this.objectArn = `arn:${Aws.PARTITION}:s3:::${location.bucketName}/${location.objectKey}`;
        const url = `https://${location.bucketName}.s3.${Aws.REGION}.${Aws.URL_SUFFIX}/${location.objectKey}`;
        this.parameterName = `/${Stack.of(this).stackName}/bundle/${props.arch}`;
        this.parameter = new ssm.StringParameter(this, 'Version', {
            parameterName: this.parameterName,
            description: `The DIPS ${props.arch} bundle the instances run: URL and version`,
            stringValue: `${url} ${props.version}`,
        });
    }
}
//# sourceMappingURL=bundle-release.js.map