import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { SignatureV4 } from '@smithy/signature-v4';
import { presignedSeconds } from './storage.js';

/** Where a bucket's objects are addressed and which region signs for it, as the SDK's endpoint rules decided. */
interface BucketEndpoint {
  protocol: string;
  hostname: string;
  port?: number;
  /** The path before an object's key: `/bucket/` path-style, `/` on a virtual-hosted bucket. */
  keyPath: string;
  region: string;
}

/** The operations URLs are made for, and their HTTP methods. */
const methods = { GetObject: 'GET', HeadObject: 'HEAD', PutObject: 'PUT', UploadPart: 'PUT' } as const;
type Operation = keyof typeof methods;

/** The key of the one URL per bucket that the SDK presigns to tell where the bucket is. */
const probeKey = 'dips-endpoint-probe';

/**
 * Presigned S3 URLs at a fraction of getSignedUrl's cost. getSignedUrl builds a command and runs the
 * client's whole middleware stack for every URL (endpoint rules, serialisation, user agent, retries):
 * most of the master's CPU per batch item in S3 mode. Here the SDK presigns one URL per bucket, which
 * says where the bucket is (protocol, host, path style, signing region, as its endpoint rules decide),
 * and every other URL is signed with Smithy's SigV4 signer, the one getSignedUrl ends in, with the same
 * credentials provider: the signatures are the SDK's own (test/master/s3-presign.test.ts compares them).
 */
export class S3Presigner {
  private readonly signer: SignatureV4;
  private readonly endpoints = new Map<string, Promise<BucketEndpoint>>();

  constructor(private readonly client: S3Client) {
    this.signer = new SignatureV4({
      credentials: client.config.credentials,
      region: client.config.region,
      service: 's3',
      sha256: client.config.sha256,
      // S3 signs the path as sent (no double encoding), and presigned requests carry no payload checksum.
      uriEscapePath: false,
      applyChecksum: false,
    });
  }

  /**
   * A URL for one operation on one object, valid presignedSeconds. `query` are parameters the URL carries
   * signed (response-content-disposition, uploadId, partNumber...).
   */
  async url(operation: Operation, bucket: string, key: string, query: Record<string, string> = {}, signingDate?: Date): Promise<string> {
    const endpoint = await this.endpointOf(bucket);
    const host = endpoint.port === undefined ? endpoint.hostname : `${endpoint.hostname}:${endpoint.port}`;
    const path = `${endpoint.keyPath}${escapeKey(key)}`;
    const signed = await this.signer.presign(
      {
        method: methods[operation],
        protocol: endpoint.protocol,
        hostname: endpoint.hostname,
        ...(endpoint.port === undefined ? {} : { port: endpoint.port }),
        path,
        // The SDK names the operation in the URL where the path alone does not tell (S3 ignores it); kept, so that a URL here is the SDK's own.
        query: operation === 'HeadObject' ? { ...query } : { ...query, 'x-id': operation },
        // As the SDK's S3 presigner: the payload is not signed (the URL is used for any body).
        headers: { host, 'X-Amz-Content-Sha256': 'UNSIGNED-PAYLOAD' },
      },
      { expiresIn: presignedSeconds, signingRegion: endpoint.region, unsignableHeaders: new Set(['content-type']), ...(signingDate ? { signingDate } : {}) },
    );
    // Every parameter is a single string: the signer adds only those, to the ones given here.
    const search = Object.entries(signed.query as Record<string, string>)
      .map(([name, value]) => `${escapeQuery(name)}=${escapeQuery(value)}`)
      .join('&');
    return `${endpoint.protocol}//${host}${path}?${search}`;
  }

  private endpointOf(bucket: string): Promise<BucketEndpoint> {
    let endpoint = this.endpoints.get(bucket);
    if (!endpoint) {
      endpoint = this.probe(bucket);
      // A failed probe (no credentials yet) is tried again on the next URL.
      endpoint.catch(() => this.endpoints.delete(bucket));
      this.endpoints.set(bucket, endpoint);
    }
    return endpoint;
  }

  private async probe(bucket: string): Promise<BucketEndpoint> {
    const url = new URL(await getSignedUrl(this.client, new GetObjectCommand({ Bucket: bucket, Key: probeKey }), { expiresIn: 60 }));
    if (!url.pathname.endsWith(`/${probeKey}`)) throw new Error(`cannot tell where bucket ${bucket} keeps its objects from ${url.origin}${url.pathname}`);
    // X-Amz-Credential is <access key>/<date>/<region>/s3/aws4_request.
    const region = url.searchParams.get('X-Amz-Credential')?.split('/')[2];
    if (!region) throw new Error(`the SDK's presigned URL for bucket ${bucket} names no signing region`);
    return {
      protocol: url.protocol,
      hostname: url.hostname,
      ...(url.port ? { port: Number(url.port) } : {}),
      keyPath: url.pathname.slice(0, -probeKey.length),
      region,
    };
  }
}

/** RFC 3986 escaping as SigV4 wants it (encodeURIComponent leaves !'()* alone). */
function escapeQuery(text: string): string {
  return encodeURIComponent(text).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** An object key in a path: each segment escaped, the slashes kept. */
function escapeKey(key: string): string {
  return key.split('/').map(escapeQuery).join('/');
}
