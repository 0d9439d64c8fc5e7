/**
 * /api/v1 datasets: datasets and their versions (validation verdicts, aliases), one version with its profile,
 * validation reports and lineage, a diff of two versions' profiles, aliases (a FAILED version only with force), the
 * inferred contract, a new version ingested and validated by a workflow (and its progress); and a model version's
 * lineage back to the alert that retrained it.
 */
import { Readable } from 'node:stream';
import { z } from 'zod';
import { inlineSecretProblem } from '../../config/redact';
import { invalid, notFound } from '../../config/errors';
import { diffProfiles } from '../../ml/profiling/profileDiff';
import {
  checkDatasetName,
  datasetSchema,
  listDatasets,
  listDatasetVersions,
  listValidationReports,
  resolveDatasetRef,
  setDatasetAlias,
} from '../../store/datasets';
import { datasetVersionLineage, modelLineage } from '../../store/lineage';
import { uiLink } from '../../storage/pipelines';
import { datasetWorkflow, type DatasetWorkflowInput } from '../../workflows/dataset';
import { DATASET_VERSION_KEY } from '../../workflows/searchAttributes';
import { route, type RouteSpec } from '../route';
import { describeJob } from './jobs';

const BASE = '/api/v1/datasets';
const tags = ['Datasets'];

/** Refs are checked by the store (`name`, `name@alias`, `name@hash-prefix`), which names the field in a 400. */
const refParams = z.object({ ref: z.string() }).strict();
const nameParams = z.object({ name: z.string() }).strict();

/** Where a new version comes from: what `flywheel datasets add` and a pipeline's `data:` say (storage/tables.ts). */
const ingestBody = z
  .object({
    source: z
      .string()
      .min(1)
      .max(4096)
      .superRefine((source, ctx) => {
        const problem = inlineSecretProblem(source);
        if (problem) ctx.addIssue({ code: z.ZodIssueCode.custom, message: problem });
      })
      .describe(
        "an absolute path under the workers' data folders, file://, http(s)://, s3://bucket/key or postgres:// URL (a password only as ${VAR})",
      ),
    format: z.enum(['csv', 'jsonl', 'parquet', 'sql']).optional().describe('@default from the source'),
    delimiter: z.string().min(1).max(4).optional().describe('CSV field separator. @default ","'),
    quote: z.string().length(1).optional().describe("CSV quote character. @default '\"'"),
    header: z.boolean().optional().describe("the CSV's first line holds the column names. @default true"),
    query: z.string().min(1).max(100_000).optional().describe('the SELECT to run against a postgres:// source'),
  })
  .strict();

export const datasetRoutes: RouteSpec[] = [
  route({
    method: 'get',
    path: BASE,
    summary: 'Datasets: version count, where @latest points, the last version',
    tags,
    scope: 'read',
    handler: async ({ deps }) => ({ datasets: await listDatasets(deps.db) }),
  }),
  route({
    method: 'get',
    path: `${BASE}/{name}/versions`,
    summary: "A dataset's versions, newest first, with their newest validation verdict and aliases",
    tags,
    scope: 'read',
    params: nameParams,
    handler: async ({ params, deps }) => ({
      dataset: params.name,
      versions: await listDatasetVersions(deps.db, params.name),
    }),
  }),
  route({
    method: 'get',
    path: `${BASE}/{ref}`,
    summary:
      'A version (name, name@alias or name@hash): profile, validation reports (newest 20), runs and model versions built from it',
    tags,
    scope: 'read',
    params: refParams,
    handler: async ({ params, deps }) => {
      const version = await resolveDatasetRef(deps.db, params.ref);
      const [validationReports, lineage] = await Promise.all([
        listValidationReports(deps.db, version.id),
        datasetVersionLineage(deps.db, version.id),
      ]);
      return {
        ...version,
        storedUri: `s3://${deps.config.s3.bucket}/${version.objectKey}`,
        validationReports,
        lineage,
      };
    },
  }),
  route({
    method: 'get',
    path: `${BASE}/{a}/diff/{b}`,
    summary:
      'Schema and per-column statistic changes from version a to b, with PSI and histograms, from their profiles',
    tags,
    scope: 'read',
    params: z.object({ a: z.string(), b: z.string() }).strict(),
    handler: async ({ params, deps }) => {
      const a = await resolveDatasetRef(deps.db, params.a, 'a');
      const b = await resolveDatasetRef(deps.db, params.b, 'b');
      return {
        a: { id: a.id, rowCount: a.rowCount },
        b: { id: b.id, rowCount: b.rowCount },
        ...diffProfiles(a.profile, b.profile),
      };
    },
  }),
  route({
    method: 'put',
    path: `${BASE}/{name}/aliases/{alias}`,
    summary: 'Point an alias at a version (refused on a version whose validation FAILED unless force)',
    tags,
    scope: 'write',
    params: z.object({ name: z.string(), alias: z.string() }).strict(),
    body: z
      .object({
        version: z
          .string()
          .min(1)
          .describe('the version id (name@hash), a hash prefix, or another alias of the dataset'),
        force: z.boolean().optional().describe('point at a version whose newest validation failed'),
      })
      .strict(),
    handler: async ({ params, body, principal, deps }) =>
      setDatasetAlias(deps.db, {
        datasetName: params.name,
        alias: params.alias,
        version: body.version,
        force: body.force,
        actor: principal.name,
      }),
  }),
  route({
    method: 'post',
    path: `${BASE}/{name}/ingests`,
    summary: 'Ingest a source as a new version and validate it (a workflow; follow it at the returned id)',
    tags,
    scope: 'write',
    params: nameParams,
    body: ingestBody,
    handler: async ({ params, body, deps }) => {
      checkDatasetName(params.name);
      if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(body.source) && !body.source.startsWith('/')) {
        throw invalid(
          'body.source',
          `"${body.source}" is a relative path on your machine; the workers cannot read it: use an absolute path under the server's data roots, an s3:// or http(s):// URL`,
        );
      }
      const input: DatasetWorkflowInput = { dataset: params.name, table: body };
      const workflowId = `dataset-${params.name}-${Date.now().toString(36)}`;
      const handle = await (
        await deps.temporal()
      ).workflow.start(datasetWorkflow, {
        workflowId,
        taskQueue: deps.config.taskQueues.main,
        args: [input],
        typedSearchAttributes: [{ key: DATASET_VERSION_KEY, value: params.name }],
      });
      return { workflowId: handle.workflowId, uiUrl: uiLink(deps.config, handle.workflowId) };
    },
  }),
  route({
    method: 'get',
    path: `${BASE}/{name}/ingests/{workflowId}`,
    summary: "An ingest's status, progress (bytes read) and result: the version and its validation, or the failure",
    tags,
    scope: 'read',
    params: z.object({ name: z.string(), workflowId: z.string().min(1).max(400) }).strict(),
    handler: async ({ params, deps }) =>
      describeJob(
        deps,
        params.workflowId,
        [datasetWorkflow.name],
        `ingest ${params.workflowId} of dataset "${params.name}"`,
        (description) => {
          // Named by the dataset until the ingest names its version (`name@hash`).
          const named = description.typedSearchAttributes.get(DATASET_VERSION_KEY);
          return named === params.name || Boolean(named?.startsWith(`${params.name}@`));
        },
      ),
  }),
  route({
    method: 'get',
    path: `${BASE}/{ref}/content`,
    summary:
      "A version's rows as stored (canonical CSV, header first): what Python training steps read. Streamed, with Content-Length",
    tags,
    scope: 'read',
    params: refParams,
    async handler({ params, deps }) {
      const version = await resolveDatasetRef(deps.db, params.ref);
      const size = await deps.objects.sizeOf(version.objectKey);
      if (size === undefined) throw notFound(`the stored rows of dataset version ${version.id}`);
      const stream = await deps.objects.getStream(version.objectKey);
      return new Response(Readable.toWeb(stream) as unknown as ReadableStream, {
        headers: {
          'content-type': 'text/csv; charset=utf-8',
          'content-length': String(size),
          'x-flywheel-content-hash': version.contentHash,
          'x-flywheel-rows': String(version.rowCount),
        },
      });
    },
  }),
  route({
    method: 'get',
    path: `${BASE}/{ref}/schema`,
    summary: "The contract in use for the dataset, or the one a version's profile suggests (ready to pin)",
    tags,
    scope: 'read',
    params: refParams,
    handler: async ({ params, deps }) => datasetSchema(deps.db, params.ref),
  }),
  route({
    method: 'get',
    path: '/api/v1/models/{name}/versions/{version}/lineage',
    summary:
      "A model version's chain: alert → retraining run → dataset version (and its validation) → model version → alias moves",
    tags: ['Models'],
    scope: 'read',
    params: z
      .object({
        name: z
          .string()
          .regex(
            /^[^/@\u0000-\u001f\u007f]{1,256}$/,
            'must be a model name: 1–256 characters without "/", "@" or control characters',
          ),
        version: z
          .string()
          .regex(/^[1-9]\d{0,9}$/, 'must be a version number')
          .transform(Number),
      })
      .strict(),
    handler: async ({ params, deps }) => modelLineage(deps.db, params.name, params.version),
  }),
];
