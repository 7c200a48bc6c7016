import { createHmac, hash } from 'node:crypto';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { presignedSeconds } from './storage.js';
/** The operations URLs are made for, and their HTTP methods. */
const methods = { GetObject: 'GET', HeadObject: 'HEAD', PutObject: 'PUT', UploadPart: 'PUT' };
/** The key of the one URL per bucket that the SDK presigns to tell where the bucket is. */
const probeKey = 'dips-endpoint-probe';
/** SigV4's name for HMAC-SHA256 signing, and the last element of every credential scope. */
const algorithm = 'AWS4-HMAC-SHA256';
const scopeTerminator = 'aws4_request';
/**
 * Presigned S3 URLs at a fraction of getSignedUrl's cost. getSignedUrl builds a command and runs the
 * client's whole middleware stack for every URL (endpoint rules, serialisation, user agent, retries):
 * most of the master's CPU per batch item in S3 mode. Here the SDK presigns one URL per bucket, which
 * says where the bucket is (protocol, host, path style, signing region, as its endpoint rules decide),
 * and every other URL is signed here by SigV4's query-string rules with the client's own credentials
 * provider: the same URL as the SDK's (test/master/s3-presign.test.ts compares them). The signing key
 * (four chained HMACs) is derived once per day and region, not per URL as Smithy's signer does (it also
 * hashes the credentials per URL to find its cache entry): one SHA-256 and one HMAC per URL.
 */
export class S3Presigner {
    client;
    endpoints = new Map();
    keys = new Map();
    constructor(client) {
        this.client = client;
    }
    /**
     * A URL for one operation on one object, valid presignedSeconds. `query` are parameters the URL carries
     * signed (response-content-disposition, uploadId, partNumber...).
     */
    async url(operation, bucket, key, query = {}, signingDate = new Date()) {
        const endpoint = await this.endpointOf(bucket);
        const credentials = await this.client.config.credentials();
        const host = endpoint.port === undefined ? endpoint.hostname : `${endpoint.hostname}:${endpoint.port}`;
        const path = `${endpoint.keyPath}${escapeKey(key)}`;
        // 20261202T040000Z: the ISO time without separators or milliseconds.
        const time = signingDate.toISOString().replace(/[-:]|\.\d{3}/g, '');
        const day = time.slice(0, 8);
        const scope = `${day}/${endpoint.region}/s3/${scopeTerminator}`;
        const parameters = {
            ...query,
            // The SDK names the operation in the URL where the path alone does not tell (S3 ignores it); kept, so that a URL here is the SDK's own.
            ...(operation === 'HeadObject' ? {} : { 'x-id': operation }),
            // As the SDK's S3 presigner: the payload is not signed (the URL is used for any body).
            'X-Amz-Content-Sha256': 'UNSIGNED-PAYLOAD',
            ...(credentials.sessionToken ? { 'X-Amz-Security-Token': credentials.sessionToken } : {}),
            'X-Amz-Algorithm': algorithm,
            'X-Amz-Credential': `${credentials.accessKeyId}/${scope}`,
            'X-Amz-Date': time,
            'X-Amz-Expires': String(presignedSeconds),
            'X-Amz-SignedHeaders': 'host',
        };
        // Sorted by escaped name (code unit order, as SigV4 wants); each parameter is a single string.
        const search = Object.entries(parameters)
            .map(([name, value]) => [escapeQuery(name), escapeQuery(value)])
            .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
            .map(([name, value]) => `${name}=${value}`)
            .join('&');
        // The canonical request: S3 signs the path as sent (no double escaping), host is the one signed header.
        const canonical = `${methods[operation]}\n${path}\n${search}\nhost:${host}\n\nhost\nUNSIGNED-PAYLOAD`;
        const toSign = `${algorithm}\n${time}\n${scope}\n${hash('sha256', canonical)}`;
        const signature = createHmac('sha256', this.signingKey(credentials.secretAccessKey, day, endpoint.region)).update(toSign).digest('hex');
        return `${endpoint.protocol}//${host}${path}?${search}&X-Amz-Signature=${signature}`;
    }
    /** HMAC("AWS4" + secret, day) → region → "s3" → "aws4_request", kept per region until the day or the secret changes. */
    signingKey(secret, day, region) {
        const known = this.keys.get(region);
        if (known && known.day === day && known.secret === secret)
            return known.key;
        let key = `AWS4${secret}`;
        for (const part of [day, region, 's3', scopeTerminator])
            key = createHmac('sha256', key).update(part).digest();
        this.keys.set(region, { day, region, secret, key: key });
        return key;
    }
    endpointOf(bucket) {
        let endpoint = this.endpoints.get(bucket);
        if (!endpoint) {
            endpoint = this.probe(bucket);
            // A failed probe (no credentials yet) is tried again on the next URL.
            endpoint.catch(() => this.endpoints.delete(bucket));
            this.endpoints.set(bucket, endpoint);
        }
        return endpoint;
    }
    async probe(bucket) {
        const url = new URL(await getSignedUrl(this.client, new GetObjectCommand({ Bucket: bucket, Key: probeKey }), { expiresIn: 60 }));
        if (!url.pathname.endsWith(`/${probeKey}`))
            throw new Error(`cannot tell where bucket ${bucket} keeps its objects from ${url.origin}${url.pathname}`);
        // X-Amz-Credential is <access key>/<date>/<region>/s3/aws4_request.
        const region = url.searchParams.get('X-Amz-Credential')?.split('/')[2];
        if (!region)
            throw new Error(`the SDK's presigned URL for bucket ${bucket} names no signing region`);
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
function escapeQuery(text) {
    return encodeURIComponent(text).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}
/** An object key in a path: each segment escaped, the slashes kept. */
function escapeKey(key) {
    return key.split('/').map(escapeQuery).join('/');
}
//# sourceMappingURL=s3-presign.js.map