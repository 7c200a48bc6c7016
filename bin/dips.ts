#!/usr/bin/env node
// CDK app: `npx cdk synth|deploy -c allowedCidr=203.0.113.7/32` (cdk.json builds first).
import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { buildBundle, defaultWorkDir } from '../lib/bundle/build-bundle.js';
import { repoRoot } from '../lib/bundle/repo-root.js';
import { DipsConfigError, readConfig } from '../lib/config.js';
import { DipsStack } from '../lib/dips-stack.js';

const app = new App();
try {
  const config = readConfig(app.node);
  const root = repoRoot();
  const bundle = await buildBundle({ repoRoot: root, workDir: defaultWorkDir(root) });
  new DipsStack(app, config.stackName, { config, bundle });
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  app.synth();
} catch (error) {
  if (!(error instanceof DipsConfigError)) throw error;
  console.error(`dips: ${error.message}`);
  process.exitCode = 1;
}
