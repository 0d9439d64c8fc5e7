// Monitors and alerts: per deployment, drift per feature over time against its threshold, prediction PSI, model
// quality, error rate and latency; open alerts with acknowledge / resolve; each alert's retraining and its rollout.
import { useMemo, useState } from 'react';
import { enc, post, q } from '../api';
import { Chart } from '../components/Chart';
import { Badge, ErrorBox, fmtNumber, fmtTime, Section, Show, Table, useApi } from '../components/common';
import { href, type Route } from '../router';
import type { Alert } from '../types';

interface Deployment {
  modelName: string;
  alias: string;
  version: number;
  endpoint: string;
  pipelineName: string;
  monitorWorkflowId: string | null;
  updatedAt: string;
}

interface Check {
  monitorWorkflowId: string;
  windowStart: string;
  windowEnd: string;
  report: {
    verdict: string;
    rows: number;
    psi?: number;
    meanShift?: number;
    version?: number;
    message: string;
    features?: {
      columns: { column: string; test: string; statistic: number; threshold: number; drifted: boolean }[];
      share: number;
    };
    performance?: { metric: string; value: number; baseline: number; labels: number };
    latency?: { p50: number; p99: number };
    service?: { errors: number; requests: number; errorRate: number };
  };
}

export function AlertsTable({ model, onChange }: { model?: string; onChange?(): void }) {
  const [all, setAll] = useState(false);
  const alerts = useApi<{ alerts: Alert[] }>(
    `/api/v1/alerts${q({ model, all: all ? 'true' : undefined, limit: 500 })}`,
  );
  const [error, setError] = useState<Error>();
  const [busy, setBusy] = useState<number>();
  const act = (alert: Alert, action: 'acknowledge' | 'resolve') => {
    setError(undefined);
    setBusy(alert.id);
    post(`/api/v1/alerts/${alert.id}/${action}`)
      .then(() => {
        alerts.reload();
        onChange?.();
      }, setError)
      .finally(() => setBusy(undefined));
  };
  return (
    <div>
      <label className="muted">
        <input type="checkbox" checked={all} onChange={(e) => setAll(e.target.checked)} /> include resolved
      </label>
      <ErrorBox error={error} />
      <Show loaded={alerts} what="alerts">
        {({ alerts: list }) => (
          <Table
            testId="alerts-table"
            rows={list}
            empty="no open alerts"
            columns={[
              { title: '#', render: (a) => <span data-testid={`alert-${a.id}`}>#{a.id}</span> },
              { title: 'status', render: (a) => <Badge value={a.status} /> },
              { title: 'severity', render: (a) => <Badge value={a.severity} /> },
              { title: 'model', render: (a) => <a href={href(['monitors', a.modelName])}>{a.modelName}</a> },
              { title: 'check', render: (a) => a.check },
              { title: 'message', render: (a) => a.message },
              { title: 'opened', render: (a) => fmtTime(a.openedAt) },
              {
                title: 'retraining → rollout',
                render: (a) =>
                  a.retrainWorkflowId ? (
                    <a href={href(['pipelines', a.retrainWorkflowId])}>{a.retrainWorkflowId}</a>
                  ) : (
                    '—'
                  ),
              },
              {
                title: '',
                render: (a) => (
                  <span className="actions">
                    {a.status === 'open' && (
                      <button
                        disabled={busy === a.id}
                        onClick={() => act(a, 'acknowledge')}
                        data-testid={`ack-${a.id}`}
                      >
                        Acknowledge
                      </button>
                    )}
                    {a.status !== 'resolved' && (
                      <button
                        disabled={busy === a.id}
                        onClick={() => act(a, 'resolve')}
                        data-testid={`resolve-${a.id}`}
                      >
                        Resolve
                      </button>
                    )}
                  </span>
                ),
              },
            ]}
          />
        )}
      </Show>
    </div>
  );
}

export function MonitorsPage({ route }: { route: Route }) {
  const deployments = useApi<{ deployments: Deployment[] }>('/api/v1/monitors');
  const focus = route.query.get('alert');
  return (
    <div>
      <h2>Monitors &amp; alerts</h2>
      {focus && (
        <div className="muted">alert #{focus} is highlighted below when open (tick "include resolved" otherwise)</div>
      )}
      <Section title="Alerts">
        <AlertsTable />
      </Section>
      <Section title="Deployments">
        <Show loaded={deployments} what="deployments">
          {({ deployments: list }) => (
            <Table
              testId="deployments-table"
              rows={list}
              empty="nothing deployed"
              columns={[
                {
                  title: 'deployment',
                  render: (d) => <a href={href(['monitors', d.modelName])}>{`${d.modelName}@${d.alias}`}</a>,
                },
                {
                  title: 'version',
                  render: (d) => <a href={href(['models', d.modelName, d.version])}>v{d.version}</a>,
                },
                { title: 'endpoint', render: (d) => d.endpoint },
                { title: 'monitor', render: (d) => d.monitorWorkflowId ?? '—' },
                { title: 'updated', render: (d) => fmtTime(d.updatedAt) },
              ]}
            />
          )}
        </Show>
      </Section>
    </div>
  );
}

const seconds = (iso: string) => Date.parse(iso) / 1000;

export function MonitorPage({ model }: { model: string }) {
  const checks = useApi<{ checks: Check[] }>(`/api/v1/models/${enc(model)}/monitor-checks?limit=1000`);
  const charts = useMemo(() => {
    const list = checks.data?.checks ?? [];
    const x = list.map((c) => seconds(c.windowEnd));
    const features = [...new Set(list.flatMap((c) => c.report.features?.columns.map((f) => f.column) ?? []))].sort();
    const perFeature = features.map((feature) => {
      const at = list.map((c) => c.report.features?.columns.find((f) => f.column === feature));
      const test = at.find(Boolean)?.test ?? '';
      return {
        feature,
        test,
        data: [x, at.map((f) => f?.statistic ?? null), at.map((f) => f?.threshold ?? null)],
      };
    });
    const pick = (read: (c: Check) => number | undefined) => list.map((c) => read(c) ?? null);
    return {
      count: list.length,
      perFeature,
      psi: [x, pick((c) => c.report.psi)],
      rows: [x, pick((c) => c.report.rows)],
      errors: [x, pick((c) => c.report.service?.errorRate)],
      latency: [x, pick((c) => c.report.latency?.p50), pick((c) => c.report.latency?.p99)],
      quality: [x, pick((c) => c.report.performance?.value), pick((c) => c.report.performance?.baseline)],
      hasQuality: list.some((c) => c.report.performance),
      last: list[list.length - 1],
    };
  }, [checks.data]);
  return (
    <div>
      <h2>Monitor of {model}</h2>
      <ErrorBox error={checks.error} />
      {checks.data && !charts.count && <div className="muted">no checks recorded yet</div>}
      {charts.last && (
        <div className="muted">
          {charts.count} checks · last window ended {fmtTime(charts.last.windowEnd)}:{' '}
          <Badge value={charts.last.report.verdict} /> {charts.last.report.message}
        </div>
      )}
      <Section title="Alerts">
        <AlertsTable model={model} onChange={checks.reload} />
      </Section>
      {charts.count > 0 && (
        <>
          <Section title="Feature drift per window (test statistic vs threshold)">
            <div className="charts" data-testid="drift-charts">
              {charts.perFeature.map((f) => (
                <Chart
                  key={f.feature}
                  testId={`drift-${f.feature}`}
                  title={`${f.feature} (${f.test})`}
                  data={f.data}
                  time
                  series={[{ label: 'statistic' }, { label: 'threshold', color: '#dc2626', dash: [6, 4] }]}
                  height={200}
                />
              ))}
            </div>
          </Section>
          <Section title="Predictions, service and quality">
            <div className="charts">
              <Chart
                title="prediction PSI vs training"
                data={charts.psi}
                time
                series={[{ label: 'PSI' }]}
                height={200}
              />
              <Chart
                title="requests per window"
                data={charts.rows}
                time
                series={[{ label: 'rows', bars: true }]}
                height={200}
              />
              <Chart
                title="error rate"
                data={charts.errors}
                time
                series={[{ label: 'error rate', color: '#dc2626' }]}
                height={200}
              />
              <Chart
                title="latency (ms)"
                data={charts.latency}
                time
                series={[{ label: 'p50' }, { label: 'p99', color: '#ea580c' }]}
                height={200}
              />
              {charts.hasQuality && (
                <Chart
                  title="model quality from labels"
                  data={charts.quality}
                  time
                  series={[{ label: 'window' }, { label: 'holdout baseline', dash: [6, 4] }]}
                  height={200}
                />
              )}
            </div>
          </Section>
          <Section title="Last window's features">
            <Table
              rows={charts.last?.report.features?.columns ?? []}
              columns={[
                { title: 'feature', render: (f) => f.column },
                { title: 'test', render: (f) => f.test },
                { title: 'statistic', render: (f) => fmtNumber(f.statistic) },
                { title: 'threshold', render: (f) => fmtNumber(f.threshold) },
                { title: 'drifted', render: (f) => <Badge value={f.drifted ? 'drift' : 'ok'} /> },
              ]}
            />
          </Section>
        </>
      )}
    </div>
  );
}
