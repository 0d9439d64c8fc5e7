// Models: versions with gate verdicts, evaluation (metrics vs champion, plots, slices), alias history, rollouts, and
// the admin actions (approve / reject / rollback / rollout) — the server checks the token's scope, the page shows why.
import { useEffect, useState } from 'react';
import { enc, post, request } from '../api';
import { Badge, ErrorBox, fmtNumber, fmtTime, KeyValues, Section, Show, Table, useApi } from '../components/common';
import { href } from '../router';
import type { AliasEvent, ModelSummary, VersionSummary } from '../types';

export function ModelsPage() {
  const models = useApi<{ models: ModelSummary[] }>('/api/v1/models?maxResults=1000');
  return (
    <div>
      <h2>Models</h2>
      <Show loaded={models} what="models">
        {({ models: list }) => (
          <Table
            testId="models-table"
            rows={list}
            empty="no registered models yet"
            columns={[
              { title: 'model', render: (m) => <a href={href(['models', m.name])}>{m.name}</a> },
              { title: 'task', render: (m) => m.task ?? '' },
              { title: 'versions', render: (m) => m.versionCount },
              { title: 'aliases', render: (m) => m.aliases.map((a) => `@${a.alias} → v${a.version}`).join(', ') },
              {
                title: 'rollout',
                render: (m) =>
                  m.rollout
                    ? `${m.rollout.mode} v${m.rollout.candidateVersion} at ${Math.round(m.rollout.weight * 100)} %`
                    : '',
              },
              { title: 'updated', render: (m) => fmtTime(m.updatedAt) },
            ]}
          />
        )}
      </Show>
    </div>
  );
}

/** The traffic split of a rollout in progress: base vs candidate, as a bar. */
function TrafficSplit({ model }: { model: ModelSummary }) {
  const rollout = model.rollout;
  const status = useApi<{
    status: string;
    phase: string | null;
    steps: {
      percent: number;
      startedAt: number;
      health?: {
        passed: boolean;
        enoughTraffic: boolean;
        failures: string[];
        candidate: { requests: number; errorRate: number; p99Ms: number | null };
        predictionPsi: number | null;
      };
    }[];
  }>(rollout ? `/api/v1/models/${enc(model.name)}/rollouts/${enc(rollout.workflowId)}` : null);
  if (!rollout) return <div className="muted">no rollout in progress</div>;
  const share = Math.round(rollout.weight * 100);
  return (
    <div data-testid="rollout">
      <div>
        {rollout.mode} of v{rollout.candidateVersion} against v{rollout.baseVersion} ·{' '}
        <a href={href(['pipelines', rollout.workflowId])}>{rollout.workflowId}</a>
      </div>
      <div className="split">
        <div style={{ width: `${100 - share}%` }} className="base">
          v{rollout.baseVersion} {100 - share} %
        </div>
        <div style={{ width: `${share}%` }} className="candidate">
          v{rollout.candidateVersion} {share} %
        </div>
      </div>
      {status.data && (
        <>
          <div className="muted">
            {status.data.status} · phase {status.data.phase ?? '—'}
          </div>
          <Table
            testId="rollout-steps"
            rows={status.data.steps}
            empty="no step finished yet"
            columns={[
              { title: 'step', render: (step) => `${step.percent} %` },
              { title: 'started', render: (step) => fmtTime(step.startedAt) },
              {
                title: 'health',
                render: (step) =>
                  step.health ? (
                    <Badge
                      value={
                        !step.health.enoughTraffic ? 'too little traffic' : step.health.passed ? 'passed' : 'failed'
                      }
                    />
                  ) : (
                    '—'
                  ),
              },
              { title: 'requests', render: (step) => step.health?.candidate.requests ?? '' },
              { title: 'error rate', render: (step) => fmtNumber(step.health?.candidate.errorRate) },
              { title: 'p99 ms', render: (step) => fmtNumber(step.health?.candidate.p99Ms) },
              { title: 'prediction PSI', render: (step) => fmtNumber(step.health?.predictionPsi) },
              { title: 'why', render: (step) => step.health?.failures.join('; ') ?? '' },
            ]}
          />
        </>
      )}
      <ErrorBox error={status.error} />
    </div>
  );
}

export function ModelPage({ name }: { name: string }) {
  const model = useApi<ModelSummary & { versions: VersionSummary[]; aliasEvents: AliasEvent[] }>(
    `/api/v1/models/${enc(name)}`,
  );
  const [message, setMessage] = useState<string>();
  const [error, setError] = useState<Error>();
  const act = (what: string, path: string, body: unknown) => {
    setMessage(undefined);
    setError(undefined);
    post<Record<string, unknown>>(path, body).then(() => {
      setMessage(`${what}: done`);
      model.reload();
    }, setError);
  };
  return (
    <Show loaded={model} what="model">
      {(m) => {
        const metricKeys = [...new Set(m.versions.flatMap((v) => Object.keys(v.metrics)))]
          .filter((k) => !k.includes('/'))
          .slice(0, 6);
        return (
          <div>
            <h2>Model {m.name}</h2>
            <div className="muted">
              {m.task ?? ''} · {m.versionCount} versions · aliases{' '}
              {m.aliases.map((a) => `@${a.alias} → v${a.version}`).join(', ') || 'none'}
            </div>
            {message && <div className="ok">{message}</div>}
            <ErrorBox error={error} />
            <Section title="Versions">
              <Table
                testId="versions-table"
                rows={m.versions}
                columns={[
                  { title: 'version', render: (v) => <a href={href(['models', m.name, v.version])}>v{v.version}</a> },
                  { title: 'gate', render: (v) => <Badge value={v.gate} /> },
                  { title: 'status', render: (v) => v.status },
                  { title: 'aliases', render: (v) => v.aliases.map((a) => `@${a}`).join(' ') },
                  ...metricKeys.map((k) => ({ title: k, render: (v: VersionSummary) => fmtNumber(v.metrics[k]) })),
                  { title: 'registered', render: (v) => fmtTime(v.createdAt) },
                  {
                    title: 'release',
                    render: (v) => (
                      <span className="actions">
                        <button
                          onClick={() =>
                            act(
                              `approve v${v.version}`,
                              `/api/v1/models/${enc(m.name)}/versions/${v.version}/approval`,
                              { decision: 'approve' },
                            )
                          }
                        >
                          Approve
                        </button>
                        <button
                          onClick={() =>
                            act(
                              `reject v${v.version}`,
                              `/api/v1/models/${enc(m.name)}/versions/${v.version}/approval`,
                              { decision: 'reject' },
                            )
                          }
                        >
                          Reject
                        </button>
                      </span>
                    ),
                  },
                ]}
              />
            </Section>
            <Section title="Aliases">
              <Table
                rows={m.aliases}
                columns={[
                  { title: 'alias', render: (a) => `@${a.alias}` },
                  { title: 'version', render: (a) => `v${a.version}` },
                  {
                    title: '',
                    render: (a) => (
                      <button
                        onClick={() =>
                          act(
                            `rollback @${a.alias}`,
                            `/api/v1/models/${enc(m.name)}/aliases/${enc(a.alias)}/rollback`,
                            { reason: 'rollback from the Flywheel UI' },
                          )
                        }
                      >
                        Roll back
                      </button>
                    ),
                  },
                ]}
              />
            </Section>
            <Section title="Rollout">
              <TrafficSplit model={m} />
            </Section>
            <Section title="Alias history (who, when, why)">
              <AliasHistory events={m.aliasEvents} />
            </Section>
          </div>
        );
      }}
    </Show>
  );
}

function AliasHistory({ events }: { events: AliasEvent[] }) {
  return (
    <Table
      testId="alias-history"
      rows={events}
      empty="no alias moves"
      columns={[
        { title: 'when', render: (e) => fmtTime(e.at) },
        { title: 'alias', render: (e) => `@${e.alias}` },
        {
          title: 'move',
          render: (e) =>
            `${e.fromVersion === null ? 'none' : `v${e.fromVersion}`} → ${e.toVersion === null ? 'deleted' : `v${e.toVersion}`}`,
        },
        { title: 'who', render: (e) => e.actor },
        { title: 'why', render: (e) => e.reason ?? '' },
      ]}
    />
  );
}

/** An evaluation plot (SVG from the object store), fetched with the token. */
function Plot({ path, name }: { path: string; name: string }) {
  const [url, setUrl] = useState<string>();
  const [error, setError] = useState<Error>();
  useEffect(() => {
    let objectUrl: string | undefined;
    request(path)
      .then((r) => r.blob())
      .then((blob) => setUrl((objectUrl = URL.createObjectURL(blob))), setError);
    return () => {
      if (objectUrl) URL.revokeObjectURL(objectUrl);
    };
  }, [path]);
  return (
    <figure className="plot">
      {url ? <img src={url} alt={name} data-testid={`plot-${name}`} /> : <ErrorBox error={error} />}
      <figcaption>{name.replace(/_/g, ' ')}</figcaption>
    </figure>
  );
}

interface Evaluation {
  holdoutRows?: number;
  metrics: Record<string, number>;
  baseline: { version: number; metrics: Record<string, number> } | null;
  gate: {
    passed: boolean;
    checks: { metric: string; rule: string; value: number | null; passed: boolean; threshold?: number }[];
    failures: string[];
  };
  slices?: { column: string; value: string; rows: number; metrics: Record<string, number> }[] | Record<string, unknown>;
  fairness?: Record<string, unknown>;
  confusion?: { labels?: string[]; matrix?: number[][] } | number[][];
  plots: string[];
}

export function VersionPage({ name, version }: { name: string; version: number }) {
  const detail = useApi<
    VersionSummary & {
      params: Record<string, unknown>;
      lineage: Record<string, unknown>;
      aliasEvents: AliasEvent[];
      approvals: { status: string; actor: string | null; comment: string | null; workflowId: string }[];
      evaluation: unknown;
    }
  >(`/api/v1/models/${enc(name)}/versions/${version}`);
  const evaluation = useApi<Evaluation>(
    detail.data?.evaluation ? `/api/v1/models/${enc(name)}/versions/${version}/evaluation` : null,
  );
  const lineage = useApi<Record<string, unknown>>(`/api/v1/models/${enc(name)}/versions/${version}/lineage`);
  const [error, setError] = useState<Error>();
  const [message, setMessage] = useState<string>();
  const decide = (decision: 'approve' | 'reject') => {
    setError(undefined);
    setMessage(undefined);
    post<{ actor: string }>(`/api/v1/models/${enc(name)}/versions/${version}/approval`, { decision }).then((r) => {
      setMessage(`${decision}d by ${r.actor}`);
      detail.reload();
    }, setError);
  };
  return (
    <Show loaded={detail} what="model version">
      {(v) => (
        <div>
          <h2>
            <a href={href(['models', name])}>{name}</a> v{v.version}{' '}
            <Badge value={v.gate ? `gate ${v.gate}` : 'no gate'} />
          </h2>
          <div className="toolbar">
            <button data-testid="approve" onClick={() => decide('approve')}>
              Approve
            </button>
            <button data-testid="reject" onClick={() => decide('reject')}>
              Reject
            </button>
            {v.runId && <a href={href(['runs', v.runId])}>training run</a>}
          </div>
          {message && <div className="ok">{message}</div>}
          <ErrorBox error={error} />
          <div className="cols">
            <Section title="Metrics">
              <KeyValues values={v.metrics} />
            </Section>
            <Section title="Lineage">
              <KeyValues values={v.lineage} />
            </Section>
          </div>
          {evaluation.data && (
            <>
              <Section title={`Evaluation on ${evaluation.data.holdoutRows ?? '?'} holdout rows`}>
                <Table
                  testId="gate-checks"
                  rows={evaluation.data.gate.checks}
                  empty="no gates"
                  columns={[
                    { title: 'gate', render: (c) => `${c.metric} (${c.rule})` },
                    { title: 'value', render: (c) => fmtNumber(c.value) },
                    { title: 'verdict', render: (c) => <Badge value={c.passed ? 'passed' : 'failed'} /> },
                  ]}
                />
                <Table
                  rows={Object.keys(evaluation.data.metrics)}
                  columns={[
                    { title: 'metric', render: (k) => k },
                    { title: `v${version}`, render: (k) => fmtNumber(evaluation.data!.metrics[k]) },
                    {
                      title: evaluation.data.baseline ? `champion v${evaluation.data.baseline.version}` : 'champion',
                      render: (k) => fmtNumber(evaluation.data!.baseline?.metrics[k]),
                    },
                  ]}
                />
              </Section>
              <Section title="Plots">
                <div className="plots">
                  {evaluation.data.plots.map((p) => (
                    <Plot key={p} name={p} path={`/api/v1/models/${enc(name)}/versions/${version}/plots/${p}`} />
                  ))}
                </div>
              </Section>
              {evaluation.data.slices && (
                <Section title="Slices">
                  <pre className="json">{JSON.stringify(evaluation.data.slices, null, 1).slice(0, 4000)}</pre>
                </Section>
              )}
              {evaluation.data.fairness && (
                <Section title="Fairness">
                  <pre className="json">{JSON.stringify(evaluation.data.fairness, null, 1).slice(0, 4000)}</pre>
                </Section>
              )}
            </>
          )}
          <ErrorBox error={evaluation.error} />
          <Section title="Approvals">
            <Table
              rows={v.approvals}
              empty="no approvals asked"
              columns={[
                { title: 'status', render: (a) => <Badge value={a.status} /> },
                { title: 'who', render: (a) => a.actor ?? '' },
                { title: 'comment', render: (a) => a.comment ?? '' },
                { title: 'release', render: (a) => <a href={href(['pipelines', a.workflowId])}>{a.workflowId}</a> },
              ]}
            />
          </Section>
          <Section title="Alias history">
            <AliasHistory events={v.aliasEvents} />
          </Section>
          <Section title="Lineage chain (alert → retraining run → dataset → version → rollout)">
            {lineage.data ? <LineageChain lineage={lineage.data} /> : <ErrorBox error={lineage.error} />}
          </Section>
        </div>
      )}
    </Show>
  );
}

/** `flywheel lineage` as a row of linked boxes. */
export function LineageChain({ lineage }: { lineage: Record<string, unknown> }) {
  const l = lineage as {
    modelName: string;
    version: number;
    trigger: string;
    alert: { id: number; check: string | null; message: string | null; openedAt: string | null } | null;
    run: { id: string; status: string } | null;
    dataset: { id: string; rowCount: number | null; validationPassed: boolean | null } | null;
    aliasMoves: AliasEvent[];
    workflowId: string | null;
  };
  return (
    <div className="chain" data-testid="lineage">
      <div className="node">
        <b>trigger</b> {l.trigger}
        {l.alert && (
          <div>
            <a href={href(['monitors'], { alert: String(l.alert.id) })}>alert #{l.alert.id}</a> {l.alert.check}:{' '}
            {l.alert.message}
          </div>
        )}
      </div>
      <span className="arrow">→</span>
      <div className="node">
        <b>run</b> {l.run ? <a href={href(['runs', l.run.id])}>{l.run.id.slice(0, 12)}</a> : '—'}{' '}
        {l.run && <Badge value={l.run.status} />}
        {l.workflowId && (
          <div>
            <a href={href(['pipelines', l.workflowId])}>pipeline</a>
          </div>
        )}
      </div>
      <span className="arrow">→</span>
      <div className="node">
        <b>dataset</b> {l.dataset ? <a href={href(['datasets', l.dataset.id])}>{l.dataset.id}</a> : '—'}{' '}
        {l.dataset && (
          <Badge
            value={l.dataset.validationPassed === null ? null : l.dataset.validationPassed ? 'passed' : 'failed'}
          />
        )}
      </div>
      <span className="arrow">→</span>
      <div className="node">
        <b>version</b> <a href={href(['models', l.modelName, l.version])}>v{l.version}</a>
      </div>
      <span className="arrow">→</span>
      <div className="node">
        <b>rollout</b>{' '}
        {l.aliasMoves.length
          ? l.aliasMoves.map((m, i) => (
              <div key={i}>
                @{m.alias} {m.fromVersion === null ? 'none' : `v${m.fromVersion}`} →{' '}
                {m.toVersion === null ? '—' : `v${m.toVersion}`} ({m.actor})
              </div>
            ))
          : 'not deployed'}
      </div>
    </div>
  );
}
