import { readFileSync } from 'node:fs';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { App } from 'aws-cdk-lib';
import { BUNDLING_STACKS } from 'aws-cdk-lib/cx-api';
import type { BundleCommand } from '../../lib/bundle-release.js';
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

/**
 * `aws:cdk:bundling-stacks` as the aws-cdk CLI 2.x sets it for each command (commandLineArgumentsToSettings
 * in aws-cdk's lib/cli/user-configuration.js): every stack for the BUNDLING_COMMANDS (deploy, diff,
 * synth, watch, import, publish-assets, refactor), none for the others.
 */
export const CLI_BUNDLING_STACKS = { synth: ['**'], diff: ['**'], deploy: ['**'], ls: [], destroy: [] } as const satisfies Record<string, readonly string[]>;
export type CdkCommand = keyof typeof CLI_BUNDLING_STACKS;

export interface SynthOptions {
  context: Record<string, unknown>;
  /** The bundle version per architecture (what bundleInputsHash gives for the service code). */
  bundleVersion?: (arch: string) => string;
  /** The CLI command whose context the synth gets (default deploy). */
  command?: CdkCommand;
  /** The command the asset manifest names for building a bundle (default: one that must never run). */
  bundleCommand?: BundleCommand;
  outdir?: string;
}

/** The version the tests give the services' code, per architecture. */
export const codeVersion = (version: string) => (arch: string) => createHash('sha256').update(`service code ${version} ${arch}`).digest('hex');

/** A bundle command that fails loudly if anything runs it. */
const NEVER_RUN: BundleCommand = () => [process.execPath, '-e', 'process.exit(99)'];

/** Synthesizes the stack as bin/dips.ts does, with the context the CDK CLI passes for `command`. */
export function synthesize(options: SynthOptions): { app: App; stack: DipsStack; config: DipsConfig } {
  const app = new App({
    context: { ...FEATURE_FLAGS, ...LOOKUPS, ...options.context, [BUNDLING_STACKS]: [...CLI_BUNDLING_STACKS[options.command ?? 'deploy']] },
    ...(options.outdir ? { outdir: options.outdir } : {}),
  });
  const config = readConfig(app.node);
  const stack = new DipsStack(app, config.stackName, {
    config,
    bundleVersion: options.bundleVersion ?? codeVersion('v1'),
    bundleCommand: options.bundleCommand ?? NEVER_RUN,
    env: { account: ACCOUNT, region: REGION },
  });
  return { app, stack, config };
}
