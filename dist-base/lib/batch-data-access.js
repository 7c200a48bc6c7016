import { Aws, Validations } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
const bucketArn = (bucket) => `arn:${Aws.PARTITION}:s3:::${bucket}`;
const objectsArn = (root) => `${bucketArn(root.bucket)}/${root.prefix}*`;
/**
 * The master's access to the buckets a deployer names for batch jobs, and to nothing else in them:
 * - ListBucket on each bucket, only for its named prefixes (the `s3:prefix` condition): listing an
 *   input prefix, and the skip of outputs already written;
 * - GetObject under the sources: the master reads each input (HeadObject is GetObject too);
 * - PutObject and AbortMultipartUpload under the destinations (PutObject covers the multipart calls),
 *   and GetObject there too: resubmitting a job compares each output's ETag (HeadObject) before
 *   skipping it.
 * Workers get nothing: the master reads inputs and writes outputs itself, handing workers only
 * master-served blob URLs (services/master/batch/runner.ts).
 * Returns the environment the master reads them from, as comma-separated URIs.
 */
export function grantBatchDataAccess(role, props) {
    const { sources, destinations } = props;
    const buckets = [...new Set([...sources, ...destinations].map((root) => root.bucket))];
    for (const [index, bucket] of buckets.entries()) {
        const prefixes = [...new Set([...sources, ...destinations].filter((root) => root.bucket === bucket).map((root) => `${root.prefix}*`))];
        role.addToPrincipalPolicy(new iam.PolicyStatement({
            sid: `ListBatchData${index}`,
            actions: ['s3:ListBucket'],
            resources: [bucketArn(bucket)],
            conditions: { StringLike: { 's3:prefix': prefixes } },
        }));
    }
    const objectStatement = (sid, actions, roots) => {
        if (roots.length === 0)
            return;
        const resources = [...new Set(roots.map(objectsArn))];
        role.addToPrincipalPolicy(new iam.PolicyStatement({ sid, actions, resources }));
        Validations.of(role).acknowledge(...roots.map((root) => ({
            id: `AwsSolutions::AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:s3:::${root.bucket}/${root.prefix}*]`,
            reason: `Batch jobs name any object under ${root.uri}: the deployer named that prefix (context "sources"/"destinations")`,
        })));
    };
    objectStatement('ReadBatchSources', ['s3:GetObject'], sources);
    objectStatement('WriteBatchDestinations', ['s3:GetObject', 's3:PutObject', 's3:AbortMultipartUpload'], destinations);
    return { DIPS_SOURCES: sources.map((root) => root.uri).join(','), DIPS_DESTINATIONS: destinations.map((root) => root.uri).join(',') };
}
//# sourceMappingURL=batch-data-access.js.map