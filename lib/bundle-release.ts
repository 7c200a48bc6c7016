import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Aws, AssetHashType, AssetStaging, BundlingOutput, DockerImage, Stack } from 'aws-cdk-lib';
import * as s3assets from 'aws-cdk-lib/aws-s3-assets';
import * as ssm from 'aws-cdk-lib/aws-ssm';
import { Construct } from 'constructs';
import type { BundleArch } from './bundle/target.js';

/** Builds the bundle for `arch` into `archivePath`, synchronously (CDK's local bundling is). */
export type BundleBuilder = (arch: BundleArch, archivePath: string) => void;

/** The default builder: `node dist/lib/bundle/main.js <arch> <archive>` (cdk.json compiles first). */
export const buildBundleInChildProcess =
  (repoRoot: string): BundleBuilder =>
  (arch, archivePath) => {
    const build = spawnSync(process.execPath, [path.join(repoRoot, 'dist', 'lib', 'bundle', 'main.js'), arch, archivePath], { encoding: 'utf8', stdio: ['ignore', 'ignore', 'pipe'] });
    if (build.status !== 0) throw new Error(`building the ${arch} bundle failed:\n${build.stderr}`);
  };

export interface BundleReleaseProps {
  arch: BundleArch;
  /** The bundle's version before it is built (bundleInputsHash): CDK names the asset by it. */
  inputsHash: string;
  /** Any folder: with a custom hash, CDK neither reads nor copies it. */
  sourceDir: string;
  builder: BundleBuilder;
}

/** Stands in for the sha256 when CDK skipped bundling (cdk ls, cdk destroy): nothing is deployed then. */
export const SKIPPED_SHA256 = 'bundling-skipped';

/**
 * One architecture's bundle as a CDK asset, plus the SSM parameter that names the current version
 * ("<https URL> <sha256>"). Instances read the parameter at boot and on in-place updates, so the
 * user data stays the same when the code changes. CDK builds the asset only for the commands that
 * bundle (synth, diff, deploy) and only when its inputs hash is new (cdk.out/asset.<hash> is reused).
 */
export class BundleRelease extends Construct {
  readonly asset: s3assets.Asset;
  readonly parameter: ssm.StringParameter;
  /** The parameter's name, as text: the same for every version, so it can sit in user data. */
  readonly parameterName: string;
  /** sha256 of the archive the instances check before unpacking. */
  readonly sha256: string;
  readonly arch: BundleArch;

  constructor(scope: Construct, id: string, props: BundleReleaseProps) {
    super(scope, id);
    this.arch = props.arch;
    this.asset = new s3assets.Asset(this, 'Asset', {
      path: props.sourceDir,
      assetHash: props.inputsHash,
      assetHashType: AssetHashType.CUSTOM,
      bundling: {
        // Never used: local bundling always succeeds or throws. CDK requires an image regardless.
        image: DockerImage.fromRegistry('dips-bundles-are-built-locally'),
        outputType: BundlingOutput.SINGLE_FILE,
        local: {
          tryBundle: (outputDir) => {
            props.builder(props.arch, path.join(outputDir, `dips-bundle-${props.arch}.tar.gz`));
            return true;
          },
        },
      },
    });
    const staging = this.asset.node.findChild('Stage') as AssetStaging;
    this.sha256 = Stack.of(this).bundlingRequired ? createHash('sha256').update(readFileSync(staging.absoluteStagedPath)).digest('hex') : SKIPPED_SHA256;
    const url = `https://${this.asset.s3BucketName}.s3.${Aws.REGION}.${Aws.URL_SUFFIX}/${this.asset.s3ObjectKey}`;
    this.parameterName = `/${Stack.of(this).stackName}/bundle/${props.arch}`;
    this.parameter = new ssm.StringParameter(this, 'Version', {
      parameterName: this.parameterName,
      description: `The DIPS ${props.arch} bundle the instances run: URL and sha256`,
      stringValue: `${url} ${this.sha256}`,
    });
  }
}
