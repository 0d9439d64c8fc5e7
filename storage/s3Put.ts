/**
 * One streaming S3 PUT of a local file, signed with AWS Signature V4 and an unsigned payload: the bytes go from disk
 * to the socket without being buffered or hashed again in this process (the caller has hashed them already).
 * S3, MinIO, R2 and Ceph all take it, for objects up to 5 GiB; larger ones go through the client's multipart upload.
 */
import { createHash, createHmac } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { Readable } from 'node:stream';
import type { S3Settings } from '../config/env';

export const SINGLE_PUT_LIMIT = 5 * 1024 ** 3;

const hmac = (key: Buffer | string, text: string) => createHmac('sha256', key).update(text).digest();
const encodeKey = (key: string) =>
  key
    .split('/')
    .map((part) =>
      encodeURIComponent(part).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`),
    )
    .join('/');

export async function putFileStreaming(
  settings: S3Settings,
  key: string,
  path: string,
  size: number,
  contentType: string,
  now = new Date(),
): Promise<void> {
  return putStreaming(settings, key, createReadStream(path, { highWaterMark: 1 << 20 }), size, contentType, now);
}

/**
 * The same PUT from a stream of exactly `size` bytes (a request body); an error on `body` aborts it, so S3 stores
 * nothing.
 */
export async function putStreaming(
  settings: S3Settings,
  key: string,
  body: Readable,
  size: number,
  contentType: string,
  now = new Date(),
): Promise<void> {
  const defaultPort = settings.useSSL ? 443 : 80;
  const hostName = settings.pathStyle ? settings.endPoint : `${settings.bucket}.${settings.endPoint}`;
  const host = settings.port === defaultPort ? hostName : `${hostName}:${settings.port}`;
  const uri = settings.pathStyle ? `/${settings.bucket}/${encodeKey(key)}` : `/${encodeKey(key)}`;
  const amzDate = now
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d{3}/, '');
  const day = amzDate.slice(0, 8);
  const scope = `${day}/${settings.region}/s3/aws4_request`;
  const signed = 'content-length;content-type;host;x-amz-content-sha256;x-amz-date';
  const canonical = [
    'PUT',
    uri,
    '',
    `content-length:${size}`,
    `content-type:${contentType}`,
    `host:${host}`,
    'x-amz-content-sha256:UNSIGNED-PAYLOAD',
    `x-amz-date:${amzDate}`,
    '',
    signed,
    'UNSIGNED-PAYLOAD',
  ].join('\n');
  const toSign = ['AWS4-HMAC-SHA256', amzDate, scope, createHash('sha256').update(canonical).digest('hex')].join('\n');
  const signingKey = hmac(hmac(hmac(hmac(`AWS4${settings.secretKey}`, day), settings.region), 's3'), 'aws4_request');
  const signature = createHmac('sha256', signingKey).update(toSign).digest('hex');
  const headers = {
    'content-length': String(size),
    'content-type': contentType,
    host,
    'x-amz-content-sha256': 'UNSIGNED-PAYLOAD',
    'x-amz-date': amzDate,
    authorization: `AWS4-HMAC-SHA256 Credential=${settings.accessKey}/${scope}, SignedHeaders=${signed}, Signature=${signature}`,
  };
  await new Promise<void>((resolve, reject) => {
    const request = (settings.useSSL ? httpsRequest : httpRequest)(
      {
        method: 'PUT',
        host: settings.endPoint,
        servername: hostName,
        port: settings.port,
        path: uri,
        headers,
        ...(settings.pathStyle ? {} : { host: hostName }),
      },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () => {
          if (response.statusCode === 200) return resolve();
          const body = Buffer.concat(chunks).toString();
          const code = /<Code>([^<]+)<\/Code>/.exec(body)?.[1];
          const message = /<Message>([^<]+)<\/Message>/.exec(body)?.[1];
          reject(
            Object.assign(
              new Error(
                `S3 PUT ${uri}: HTTP ${response.statusCode}${code ? ` ${code}` : ''}${message ? `: ${message}` : ''}`,
              ),
              { code },
            ),
          );
        });
        response.on('error', reject);
      },
    );
    request.on('error', reject);
    body.on('error', (error) => request.destroy(error));
    body.pipe(request);
  });
}
