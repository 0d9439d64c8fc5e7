/**
 * compose.yaml and the Dockerfiles, linted without a container engine (none on this machine): the structure parses,
 * every service can be built or pulled, dependencies and ports are consistent, the Flywheel services reach the others
 * by service name, and every FLYWHEEL_ variable they set is one config/env.ts reads.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { PROJECT_ROOT } from '../../config/env';

interface Service {
  image?: string;
  build?: string | { context: string };
  command?: string[];
  environment?: Record<string, string>;
  ports?: string[];
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: { test: string[] };
  profiles?: string[];
}

const read = (path: string) => readFileSync(join(PROJECT_ROOT, path), 'utf8');
const compose = parse(read('compose.yaml'), { merge: true }) as { services: Record<string, Service> };
const services = Object.entries(compose.services);
const flywheel = services.filter(([, s]) => s.image === 'flywheel:latest');
const entrypoint = read('docker/entrypoint.sh');
const envSource = read('config/env.ts');

describe('compose.yaml', () => {
  it('has Temporal, Postgres, MinIO, the server, two workers, serving and the Python worker', () => {
    expect(Object.keys(compose.services)).toEqual(
      expect.arrayContaining([
        'temporal',
        'postgres',
        'minio',
        'server',
        'worker-1',
        'worker-2',
        'serving',
        'python-worker',
      ]),
    );
  });

  it('gives every service an image or a build whose context has a Dockerfile', () => {
    for (const [name, service] of services) {
      expect(service.image ?? service.build, `${name}: image or build`).toBeTruthy();
      if (service.build) {
        const context = typeof service.build === 'string' ? service.build : service.build.context;
        expect(existsSync(join(PROJECT_ROOT, context, 'Dockerfile')), `${name}: ${context}/Dockerfile`).toBe(true);
      }
    }
  });

  it('depends only on services it declares, waiting on health only where a healthcheck exists', () => {
    for (const [name, service] of services)
      for (const [target, { condition }] of Object.entries(service.depends_on ?? {})) {
        expect(compose.services[target], `${name} depends on ${target}`).toBeDefined();
        if (condition === 'service_healthy') expect(compose.services[target]!.healthcheck, `${target}`).toBeDefined();
      }
  });

  it('publishes each host port once, and the Flywheel ports match the ports their processes are told to use', () => {
    const published = services.flatMap(([, s]) => (s.ports ?? []).map((p) => p.split(':')[0]));
    expect(new Set(published).size).toBe(published.length);
    const server = compose.services.server!;
    expect(server.ports).toContain(
      `${server.environment!.FLYWHEEL_SERVER_PORT}:${server.environment!.FLYWHEEL_SERVER_PORT}`,
    );
    const serving = compose.services.serving!;
    expect(serving.ports).toContain(
      `${serving.environment!.FLYWHEEL_SERVING_PORT}:${serving.environment!.FLYWHEEL_SERVING_PORT}`,
    );
    expect(server.healthcheck!.test.join(' ')).toContain(`:${server.environment!.FLYWHEEL_SERVER_PORT}/health`);
    expect(serving.healthcheck!.test.join(' ')).toContain(`:${serving.environment!.FLYWHEEL_SERVING_PORT}/v2/health`);
    for (const name of ['worker-1', 'worker-2']) {
      const worker = compose.services[name]!;
      expect(worker.healthcheck!.test.join(' ')).toContain(
        `:${worker.environment!.FLYWHEEL_WORKER_METRICS_PORT}/metrics`,
      );
    }
  });

  it('runs each Flywheel service with a command the image knows, reaching Postgres, Temporal and MinIO by name', () => {
    expect(flywheel.map(([name]) => name).sort()).toEqual(['prepare', 'server', 'serving', 'worker-1', 'worker-2']);
    for (const [name, service] of flywheel) {
      expect(entrypoint, `${name}: ${service.command?.[0]}`).toContain(`  ${service.command![0]})`);
      const env = service.environment!;
      expect(new URL(env.DATABASE_URL!).hostname, name).toBe('postgres');
      expect(env.TEMPORAL_ADDRESS!.split(':')[0], name).toBe('temporal');
      expect(new URL(env.FLYWHEEL_S3_ENDPOINT!).hostname, name).toBe('minio');
      expect(env.FLYWHEEL_S3_ACCESS_KEY).toBe(compose.services.minio!.environment!.MINIO_ROOT_USER);
      expect(env.FLYWHEEL_S3_SECRET_KEY).toBe(compose.services.minio!.environment!.MINIO_ROOT_PASSWORD);
      for (const variable of Object.keys(env).filter((v) => v.startsWith('FLYWHEEL_') || v.startsWith('TEMPORAL_')))
        expect(envSource, `${name}: ${variable} is read by config/env.ts`).toContain(variable);
    }
    const python = compose.services['python-worker']!;
    expect(new URL(python.environment!.FLYWHEEL_URL!).hostname).toBe('server');
  });
});

describe('Dockerfiles', () => {
  it('build the Flywheel image in stages on node:20-slim, with production dependencies only, as a non-root user', () => {
    const dockerfile = read('Dockerfile');
    const stages = dockerfile.match(/^FROM .+$/gm)!;
    expect(stages.length).toBeGreaterThan(1);
    for (const stage of stages) expect(stage).toMatch(/^FROM node:20-slim\b/);
    expect(dockerfile).toMatch(/npm ci --omit=dev/);
    expect(dockerfile).toMatch(/^USER (?!root)\S+$/m);
    expect(dockerfile).toContain('ENTRYPOINT ["flywheel-entrypoint"]');
    // Every source folder the processes import is in the image.
    for (const folder of [
      'observability',
      'server',
      'serving',
      'workers',
      'workflows',
      'activities',
      'store',
      'storage',
    ])
      expect(dockerfile).toContain(`COPY ${folder} ./${folder}`);
  });

  it("build the Python worker from sdk/python as a non-root user, running the SDK's worker", () => {
    const dockerfile = read('sdk/python/Dockerfile');
    expect(dockerfile).toMatch(/^FROM python:3\.\d+-slim$/m);
    expect(dockerfile).toMatch(/^USER (?!root)\S+$/m);
    expect(dockerfile).toContain('ENTRYPOINT ["flywheel-worker"]');
    expect(read('sdk/python/pyproject.toml')).toContain('flywheel-worker = ');
  });
});
