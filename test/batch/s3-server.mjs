// A real S3-protocol server on loopback for the batch tests: the maintained s3rver in its own process.
//   node --openssl-legacy-provider test/batch/s3-server.mjs <directory> <port, 0: any> <bucket>...
// It prints "listening on 127.0.0.1:<port>" once it serves.
// The flag: s3rver encrypts list continuation tokens with DES, which OpenSSL 3 has only in its legacy provider.
import { createRequire } from 'node:module';
import S3rver from '@20minutes/s3rver';

// s3rver checks SigV4 signatures but builds the canonical URI of a bucket-level request (ListObjectsV2)
// as `/bucket`, while the AWS SDK v3 sends and signs the path-style `/bucket/`: every listing would fail
// with SignatureDoesNotMatch. S3 signs the path as sent; this restores that for bucket paths.
const signing = createRequire(import.meta.url)('@20minutes/s3rver/lib/signature/v4.js');
const getStringToSign = signing.getStringToSign;
signing.getStringToSign = (request, signature) => getStringToSign(/^\/[^/]+$/.test(request.uri) ? { ...request, uri: `${request.uri}/` } : request, signature);

const [directory, port, ...buckets] = process.argv.slice(2);
const server = new S3rver({ address: '127.0.0.1', port: Number(port), silent: true, directory, configureBuckets: buckets.map((name) => ({ name })) });
const { port: listening } = await server.run();
process.stdout.write(`listening on 127.0.0.1:${listening}\n`);
