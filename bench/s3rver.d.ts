/** The part of @20minutes/s3rver (a maintained fork of s3rver, which ships no types) that DIPS uses. */
declare module '@20minutes/s3rver' {
  import type { AddressInfo } from 'node:net';
  interface S3rverOptions {
    address?: string;
    port?: number;
    silent?: boolean;
    directory?: string;
    /** Each bucket, with its subresource documents (CORSConfiguration, WebsiteConfiguration XML). */
    configureBuckets?: Array<{ name: string; configs?: string[] }>;
  }
  export default class S3rver {
    constructor(options: S3rverOptions);
    run(): Promise<AddressInfo>;
    close(): Promise<void>;
  }
}
