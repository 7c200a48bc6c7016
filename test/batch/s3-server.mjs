// A real S3-protocol server on loopback for the batch tests: the maintained s3rver in its own process.
//   node --openssl-legacy-provider test/batch/s3-server.mjs <directory> <port, 0: any> <bucket>...
// It prints "listening on 127.0.0.1:<port>" once it serves.
// The flag: s3rver encrypts list continuation tokens with DES, which OpenSSL 3 has only in its legacy provider.
import S3rver from '@20minutes/s3rver';
// Where s3rver answers otherwise than S3 in what DIPS relies on (signing of bucket paths, If-Match), the
// same corrections as the in-process server's (bench/s3rver-fidelity.ts, built by npm test's pretest).
import '../../dist/bench/s3rver-fidelity.js';

const [directory, port, ...buckets] = process.argv.slice(2);
const server = new S3rver({ address: '127.0.0.1', port: Number(port), silent: true, directory, configureBuckets: buckets.map((name) => ({ name })) });
const { port: listening } = await server.run();
process.stdout.write(`listening on 127.0.0.1:${listening}\n`);
