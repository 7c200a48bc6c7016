#!/usr/bin/env node
// CDK app: `npx cdk synth|deploy -c allowedCidr=203.0.113.7/32` (cdk.json builds first).
import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { bundleInputsHash } from '../lib/bundle/build-bundle.js';
import { repoRoot } from '../lib/bundle/repo-root.js';
import { BUNDLE_ARCHS } from '../lib/bundle/target.js';
import { bundleCommandOf } from '../lib/bundle-release.js';
import { DipsConfigError, readConfig } from '../lib/config.js';
import { DipsStack } from '../lib/dips-stack.js';
const app = new App();
try {
    const config = readConfig(app.node);
    const root = repoRoot();
    // Hashing the inputs is cheap; building is left to CDK's asset publisher, which only cdk deploy runs.
    const versions = Object.fromEntries(await Promise.all(BUNDLE_ARCHS.map(async (arch) => [arch, await bundleInputsHash(root, arch)])));
    new DipsStack(app, config.stackName, {
        config,
        bundleVersion: (arch) => versions[arch],
        bundleCommand: bundleCommandOf(root),
        // Looks up (once, then cdk.context.json) the pinned Ubuntu images and the availability zones.
        env: { account: process.env.CDK_DEFAULT_ACCOUNT, region: process.env.CDK_DEFAULT_REGION },
    });
    Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
    app.synth();
}
catch (error) {
    if (!(error instanceof DipsConfigError))
        throw error;
    console.error(`dips: ${error.message}`);
    process.exitCode = 1;
}
//# sourceMappingURL=dips.js.map