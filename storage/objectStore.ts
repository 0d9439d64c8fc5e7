/** The artifact store: S3-generic (MinIO, AWS S3, R2, Ceph) behind a small interface. */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { Client, CopyDestinationOptions, CopySourceOptions } from 'minio';
import type { S3Settings } from '../config/env';
import { putFileStreaming, putStreaming, SINGLE_PUT_LIMIT } from './s3Put';

export interface ObjectStore {
  readonly bucket: string;
  /** Uploads a local file; returns its s3:// URI. */
  putFile(key: string, path: string, contentType?: string): Promise<string>;
  putBuffer(key: string, body: Buffer | string, contentType?: string): Promise<string>;
  putJson(key: string, value: unknown): Promise<string>;
  /** Streams exactly `size` bytes to `key`; an error on `body` aborts the write. Returns the s3:// URI. */
  putStream(key: string, body: Readable, size: number, contentType?: string): Promise<string>;
  /** Copies an object within the bucket (up to 5 GiB: S3's single copy). */
  copy(fromKey: string, toKey: string): Promise<void>;
  /** Streams an object; `bucket` defaults to Flywheel's own (other buckets serve s3:// data sources). */
  getStream(key: string, bucket?: string): Promise<Readable>;
  getBuffer(key: string, bucket?: string): Promise<Buffer>;
  getJson<T>(key: string): Promise<T>;
  /** Size in bytes, or undefined when the object does not exist. */
  sizeOf(key: string, bucket?: string): Promise<number | undefined>;
  remove(key: string): Promise<void>;
  /** Keys under a prefix (recursive). */
  list(prefix: string): Promise<string[]>;
  ensureBucket(): Promise<void>;
  uri(key: string): string;
}

export class ObjectNotFoundError extends Error {
  constructor(readonly uri: string) {
    super(`object ${uri} does not exist`);
    this.name = 'ObjectNotFoundError';
  }
}

function isNotFound(error: unknown): boolean {
  const code = (error as { code?: string }).code;
  return code === 'NoSuchKey' || code === 'NotFound' || code === 'NoSuchBucket';
}

export class S3ObjectStore implements ObjectStore {
  private readonly client: Client;
  readonly bucket: string;

  constructor(private readonly settings: S3Settings) {
    this.client = new Client({
      endPoint: settings.endPoint,
      port: settings.port,
      useSSL: settings.useSSL,
      accessKey: settings.accessKey,
      secretKey: settings.secretKey,
      region: settings.region,
      pathStyle: settings.pathStyle,
    });
    this.bucket = settings.bucket;
  }

  uri(key: string): string {
    return `s3://${this.bucket}/${key}`;
  }

  async ensureBucket(): Promise<void> {
    if (!(await this.client.bucketExists(this.bucket))) await this.client.makeBucket(this.bucket, this.settings.region);
  }

  async putFile(key: string, path: string, contentType = 'application/octet-stream'): Promise<string> {
    const { size } = await stat(path);
    if (size <= SINGLE_PUT_LIMIT) await putFileStreaming(this.settings, key, path, size, contentType);
    // With the size known the client picks small parts; without it, it assumes 5 TiB and buffers ~560 MiB parts.
    else await this.client.putObject(this.bucket, key, createReadStream(path), size, { 'Content-Type': contentType });
    return this.uri(key);
  }

  async putBuffer(key: string, body: Buffer | string, contentType = 'application/octet-stream'): Promise<string> {
    const buffer = typeof body === 'string' ? Buffer.from(body) : body;
    await this.client.putObject(this.bucket, key, buffer, buffer.length, { 'Content-Type': contentType });
    return this.uri(key);
  }

  putJson(key: string, value: unknown): Promise<string> {
    return this.putBuffer(key, JSON.stringify(value), 'application/json');
  }

  async putStream(
    key: string,
    body: Readable,
    size: number,
    contentType = 'application/octet-stream',
  ): Promise<string> {
    if (size <= SINGLE_PUT_LIMIT) await putStreaming(this.settings, key, body, size, contentType);
    else await this.client.putObject(this.bucket, key, body, size, { 'Content-Type': contentType });
    return this.uri(key);
  }

  async copy(fromKey: string, toKey: string): Promise<void> {
    await this.client.copyObject(
      new CopySourceOptions({ Bucket: this.bucket, Object: fromKey }),
      new CopyDestinationOptions({ Bucket: this.bucket, Object: toKey }),
    );
  }

  async getStream(key: string, bucket = this.bucket): Promise<Readable> {
    try {
      return await this.client.getObject(bucket, key);
    } catch (error) {
      if (isNotFound(error)) throw new ObjectNotFoundError(`s3://${bucket}/${key}`);
      throw error;
    }
  }

  async getBuffer(key: string, bucket = this.bucket): Promise<Buffer> {
    const chunks: Buffer[] = [];
    for await (const chunk of await this.getStream(key, bucket)) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks);
  }

  async getJson<T>(key: string): Promise<T> {
    return JSON.parse((await this.getBuffer(key)).toString('utf8')) as T;
  }

  async sizeOf(key: string, bucket = this.bucket): Promise<number | undefined> {
    try {
      return (await this.client.statObject(bucket, key)).size;
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
  }

  async remove(key: string): Promise<void> {
    await this.client.removeObject(this.bucket, key);
  }

  async list(prefix: string): Promise<string[]> {
    const keys: string[] = [];
    for await (const item of this.client.listObjectsV2(this.bucket, prefix, true)) if (item.name) keys.push(item.name);
    return keys;
  }
}
