import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { App } from 'aws-cdk-lib';
import { BUNDLING_STACKS } from 'aws-cdk-lib/cx-api';
import { type DipsConfig, readConfig } from '../../lib/config.js';
import { DipsStack } from '../../lib/dips-stack.js';
import { ARCH_FACTS } from '../../lib/bundle/target.js';
import { repoRoot } from '../../lib/bundle/repo-root.js';

export const ACCOUNT = '123456789012';
export const REGION = 'eu-west-3';
export const AMIS = { x64: 'ami-0aaaaaaaaaaaaaaa1', arm64: 'ami-0bbbbbbbbbbbbbbb2' } as const;

/**
 * The context a first `cdk synth` would have cached in cdk.context.json: the pinned Ubuntu images
 * and the region's availability zones (new App() reads no cdk.json, so tests give it themselves).
 */
export const LOOKUPS: Record<string, unknown> = {
  [`availability-zones:account=${ACCOUNT}:region=${REGION}`]: [`${REGION}a`, `${REGION}b`, `${REGION}c`],
  ...Object.fromEntries(
    (['x64', 'arm64'] as const).map((arch) => [`ssm:account=${ACCOUNT}:parameterName=${ARCH_FACTS[arch].ubuntuAmiParameter}:region=${REGION}`, AMIS[arch]]),
  ),
};

/** cdk.json's feature flags, as the CDK CLI passes them (new App() reads no cdk.json by itself). */
export const FEATURE_FLAGS = (JSON.parse(readFileSync(path.join(repoRoot(), 'cdk.json'), 'utf8')) as { context: Record<string, unknown> }).context;

export interface SynthOptions {
  context: Record<string, unknown>;
  /** The bundle version per architecture (what bundleInputsHash gives for the service code). */
  inputsHash?: (arch: string) => string;
  /** Whether CDK bundles (synth/deploy) or skips it (ls/destroy). */
  bundle?: boolean;
  outdir?: string;
}

/** Synthesizes the stack as bin/dips.ts does, with a stand-in builder that records each build. */
export function synthesize(options: SynthOptions): { app: App; stack: DipsStack; config: DipsConfig; builds: string[] } {
  const app = new App({
    context: { ...FEATURE_FLAGS, ...LOOKUPS, ...options.context, [BUNDLING_STACKS]: options.bundle ? ['**'] : [] },
    ...(options.outdir ? { outdir: options.outdir } : {}),
  });
  const config = readConfig(app.node);
  const builds: string[] = [];
  const inputsHash = options.inputsHash ?? ((arch: string) => createHash('sha256').update(`service code v1 ${arch}`).digest('hex'));
  const stack = new DipsStack(app, config.stackName, {
    config,
    repoRoot: repoRoot(),
    inputsHash,
    builder: (arch, archivePath) => {
      builds.push(arch);
      writeFileSync(archivePath, standInArchive(arch, inputsHash(arch)));
    },
    env: { account: ACCOUNT, region: REGION },
  });
  return { app, stack, config, builds };
}

/** The bytes the stand-in builder writes: any bytes do, the stack only uploads them. */
export const standInArchive = (arch: string, inputsHash: string) => `stand-in ${arch} bundle of ${inputsHash}`;
