import { createReadStream } from 'node:fs';
import fs from 'node:fs/promises';
import { Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { create as contentDisposition } from 'content-disposition';
import type { ByteRange } from '../image-core/intermediate.js';
import type { Location } from '../protocol/tasks.js';
import { S3Presigner } from './s3-presign.js';
import { checkKey, type Storage, type StoredObject, VersionChanged } from './storage.js';

/**
 * Storage in an S3 bucket under a prefix (DIPS_STORAGE=s3, DIPS_S3_BUCKET, DIPS_S3_PREFIX). Workers get
 * presigned URLs, so they need no AWS permissions and their bytes never pass through the master.
 */
export class S3Storage implements Storage {
  private readonly presigner: S3Presigner;

  constructor(
    private readonly client: S3Client,
    private readonly bucket: string,
    private readonly prefix = '',
  ) {
    this.presigner = new S3Presigner(client);
  }

  private keyOf(key: string): string {
    return `${this.prefix}${checkKey(key)}`;
  }

  /** A spooled file has a known size: one PUT, streamed from disk (S3 takes up to 5 GB so). */
  async putFile(key: string, localPath: string): Promise<void> {
    const { size } = await fs.stat(localPath);
    await this.client.send(
      new PutObjectCommand({ Bucket: this.bucket, Key: this.keyOf(key), Body: createReadStream(localPath), ContentLength: size }),
    );
    await fs.rm(localPath, { force: true });
  }

  /** Multipart for anything over one part (lib-storage), so memory stays at a few parts whatever the size. */
  async putStream(key: string, body: Readable): Promise<void> {
    await new Upload({ client: this.client, params: { Bucket: this.bucket, Key: this.keyOf(key), Body: body } }).done();
  }

  async putBuffer(key: string, data: Buffer): Promise<void> {
    await this.client.send(new PutObjectCommand({ Bucket: this.bucket, Key: this.keyOf(key), Body: data }));
  }

  async getStream(key: string, range?: ByteRange): Promise<Readable> {
    const { Body } = await this.client.send(
      new GetObjectCommand({ Bucket: this.bucket, Key: this.keyOf(key), ...(range ? { Range: `bytes=${range.start}-${range.end}` } : {}) }),
    );
    if (!Body) throw new Error(`s3 object ${key} has no body`);
    return Body instanceof Readable ? Body : Readable.fromWeb(Body.transformToWebStream() as never);
  }

  async getBuffer(key: string): Promise<Buffer> {
    const { Body } = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: this.keyOf(key) }));
    if (!Body) throw new Error(`s3 object ${key} has no body`);
    return Buffer.from(await Body.transformToByteArray());
  }

  async copyObject(from: string, to: string, version?: string): Promise<void> {
    // Keys are checked to [A-Za-z0-9._-/] (checkKey), so the copy source needs no escaping.
    await this.client
      .send(new CopyObjectCommand({ Bucket: this.bucket, Key: this.keyOf(to), CopySource: `${this.bucket}/${this.keyOf(from)}`, ...(version ? { CopySourceIfMatch: version } : {}) }))
      .catch((error: unknown) => {
        throw (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 412 ? new VersionChanged(from) : error;
      });
  }

  /** One ListObjectsV2 per 1,000 objects, rather than a HEAD per object. */
  async listObjects(prefix: string): Promise<Map<string, StoredObject>> {
    const sizes = new Map<string, StoredObject>();
    let continuationToken: string | undefined;
    do {
      const page = await this.client.send(
        new ListObjectsV2Command({ Bucket: this.bucket, Prefix: `${this.keyOf(prefix)}/`, Delimiter: '/', ContinuationToken: continuationToken }),
      );
      for (const object of page.Contents ?? []) {
        if (object.Key) sizes.set(object.Key.slice(this.prefix.length), { size: object.Size ?? 0, ...(object.ETag ? { etag: object.ETag } : {}) });
      }
      continuationToken = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (continuationToken);
    return sizes;
  }

  /** One DeleteObject per key: a tiled image has a handful of intermediates, and S3 answers a missing key with success too. */
  async deleteKeys(keys: string[]): Promise<void> {
    await Promise.all(keys.map((key) => this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.keyOf(key) }))));
  }

  async deletePrefix(prefix: string): Promise<void> {
    let continuationToken: string | undefined;
    do {
      const page = await this.client.send(
        new ListObjectsV2Command({ Bucket: this.bucket, Prefix: this.keyOf(prefix), ContinuationToken: continuationToken }),
      );
      const keys = (page.Contents ?? []).flatMap((object) => (object.Key ? [{ Key: object.Key }] : []));
      if (keys.length > 0) {
        await this.client.send(new DeleteObjectsCommand({ Bucket: this.bucket, Delete: { Objects: keys } }));
      }
      continuationToken = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (continuationToken);
  }

  /** A ranged read is the presigned GET plus a Range header the worker adds (unsigned headers are allowed). */
  async locate(key: string, access: 'get' | 'put', _worker?: unknown, range?: ByteRange): Promise<Location> {
    return { via: 'url', url: await this.presigner.url(access === 'get' ? 'GetObject' : 'PutObject', this.bucket, this.keyOf(key)), ...(range ? { range } : {}) };
  }

  async openParts(key: string): Promise<string> {
    const { UploadId } = await this.client.send(new CreateMultipartUploadCommand({ Bucket: this.bucket, Key: this.keyOf(key) }));
    if (!UploadId) throw new Error(`s3 gave no upload id for ${key}`);
    return UploadId;
  }

  /**
   * Part `number` as a presigned UploadPart URL. S3 wants every part but the last to be at least 5 MiB:
   * strips of the planner's tiles are (a 2048² tile's area of RGB is 12 MiB); small forced tile sizes
   * (DIPS_TILE_SIZE) make smaller parts, which S3-compatible test servers accept.
   */
  async locatePart(key: string, upload: string | undefined, part: { number: number; range: ByteRange }): Promise<Location> {
    if (!upload) throw new Error(`s3 object ${key} has no multipart upload to write part ${part.number} into`);
    const url = await this.presigner.url('UploadPart', this.bucket, this.keyOf(key), { partNumber: String(part.number), uploadId: upload });
    return { via: 'url', url, range: part.range };
  }

  /** Workers always reach the bucket themselves (locatePart never declines), so the master never takes a piece. */
  async putRange(key: string): Promise<void> {
    throw new Error(`s3 object ${key} is written by parts through presigned URLs, not by the master`);
  }

  async closeParts(key: string, upload: string | undefined, tags: string[]): Promise<void> {
    await this.client.send(
      new CompleteMultipartUploadCommand({
        Bucket: this.bucket,
        Key: this.keyOf(key),
        UploadId: upload,
        MultipartUpload: { Parts: tags.map((ETag, i) => ({ ETag, PartNumber: i + 1 })) },
      }),
    );
  }

  async abortParts(key: string, upload: string | undefined): Promise<void> {
    await this.client.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: this.keyOf(key), UploadId: upload }));
  }

  /** A presigned PUT (valid presignedSeconds, like the session it belongs to). */
  async uploadUrl(key: string): Promise<string> {
    return this.presigner.url('PutObject', this.bucket, this.keyOf(key));
  }

  async downloadUrl(key: string, as: { fileName: string; contentType: string }): Promise<string> {
    return this.presigner.url('GetObject', this.bucket, this.keyOf(key), {
      'response-content-disposition': contentDisposition(as.fileName),
      'response-content-type': as.contentType,
    });
  }
}
