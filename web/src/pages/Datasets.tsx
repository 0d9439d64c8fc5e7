// Datasets: versions with validation verdicts, a version's profile (histograms, nulls, top values), its validation
// report (the failing column with example rows), and the diff of two versions with distributions overlaid.
import { useMemo, useState } from 'react';
import { enc } from '../api';
import { Chart } from '../components/Chart';
import { Badge, fmtNumber, fmtTime, KeyValues, Section, Show, Table, useApi } from '../components/common';
import { href, navigate, type Route } from '../router';

interface ColumnProfile {
  name: string;
  type: string;
  count: number;
  nulls: number;
  distinct: number;
  min?: number;
  max?: number;
  mean?: number;
  std?: number;
  histogram?: { edges: number[]; counts: number[] };
  topValues?: { value: string; count: number }[];
}

interface Issue {
  severity: string;
  column: string;
  check: string;
  message: string;
  failingRows: number;
  examples: { row: number; line: number; value: string }[];
}

interface VersionSummary {
  id: string;
  rowCount: number;
  columnCount: number;
  byteSize: number;
  format: string;
  aliases: string[];
  validation: { passed: boolean; errorCount: number; warningCount: number } | null;
  createdAt: string;
}

const verdict = (v: { passed: boolean } | null) => (v ? (v.passed ? 'passed' : 'failed') : null);

export function DatasetsPage() {
  const datasets = useApi<{
    datasets: {
      name: string;
      versionCount: number;
      latestVersionId: string | null;
      latestRowCount: number | null;
      lastVersionAt: string | null;
    }[];
  }>('/api/v1/datasets');
  return (
    <div>
      <h2>Datasets</h2>
      <Show loaded={datasets} what="datasets">
        {({ datasets: list }) => (
          <Table
            testId="datasets-table"
            rows={list}
            empty="no datasets yet"
            columns={[
              { title: 'dataset', render: (d) => <a href={href(['datasets', d.name])}>{d.name}</a> },
              { title: 'versions', render: (d) => d.versionCount },
              {
                title: '@latest',
                render: (d) =>
                  d.latestVersionId ? <a href={href(['datasets', d.latestVersionId])}>{d.latestVersionId}</a> : '—',
              },
              { title: 'rows', render: (d) => d.latestRowCount?.toLocaleString() ?? '' },
              { title: 'last version', render: (d) => fmtTime(d.lastVersionAt) },
            ]}
          />
        )}
      </Show>
    </div>
  );
}

export function DatasetPage({ name }: { name: string }) {
  const versions = useApi<{ versions: VersionSummary[] }>(`/api/v1/datasets/${enc(name)}/versions`);
  const [picked, setPicked] = useState<string[]>([]);
  const toggle = (id: string) =>
    setPicked((old) => (old.includes(id) ? old.filter((x) => x !== id) : [...old, id].slice(-2)));
  return (
    <div>
      <h2>Dataset {name}</h2>
      <div className="toolbar">
        <button
          disabled={picked.length !== 2}
          onClick={() => navigate(href(['datasets-diff'], { a: picked[0], b: picked[1] }))}
        >
          Diff the two picked versions
        </button>
      </div>
      <Show loaded={versions} what="versions">
        {({ versions: list }) => (
          <Table
            testId="dataset-versions"
            rows={list}
            columns={[
              {
                title: '',
                render: (v) => (
                  <input
                    type="checkbox"
                    aria-label={`pick ${v.id}`}
                    checked={picked.includes(v.id)}
                    onChange={() => toggle(v.id)}
                  />
                ),
              },
              { title: 'version', render: (v) => <a href={href(['datasets', v.id])}>{v.id}</a> },
              { title: 'validation', render: (v) => <Badge value={verdict(v.validation)} /> },
              { title: 'errors', render: (v) => v.validation?.errorCount ?? '' },
              { title: 'warnings', render: (v) => v.validation?.warningCount ?? '' },
              { title: 'rows', render: (v) => v.rowCount.toLocaleString() },
              { title: 'columns', render: (v) => v.columnCount },
              { title: 'aliases', render: (v) => v.aliases.map((a) => `@${a}`).join(' ') },
              { title: 'created', render: (v) => fmtTime(v.createdAt) },
            ]}
          />
        )}
      </Show>
    </div>
  );
}

function ColumnCard({ column }: { column: ColumnProfile }) {
  const chart = useMemo(() => {
    if (column.histogram && column.histogram.counts.length) {
      const { edges, counts } = column.histogram;
      return { data: [counts.map((_, i) => (edges[i]! + edges[i + 1]!) / 2), counts], ticks: undefined };
    }
    if (column.topValues?.length) {
      const top = column.topValues.slice(0, 12);
      return { data: [top.map((_, i) => i), top.map((t) => t.count)], ticks: top.map((t) => t.value) };
    }
    return undefined;
  }, [column]);
  const nullShare = column.count ? column.nulls / column.count : 0;
  return (
    <div className="column-card" data-testid={`profile-${column.name}`}>
      <h4>
        {column.name} <span className="muted">{column.type}</span>
      </h4>
      <div className={nullShare > 0 ? 'warn' : 'muted'}>
        nulls {column.nulls.toLocaleString()} ({(nullShare * 100).toFixed(1)} %) · distinct{' '}
        {column.distinct.toLocaleString()}
      </div>
      {column.mean !== undefined && (
        <div className="muted">
          mean {fmtNumber(column.mean)} · std {fmtNumber(column.std)} · [{fmtNumber(column.min)},{' '}
          {fmtNumber(column.max)}]
        </div>
      )}
      {chart && <Chart data={chart.data} series={[{ label: 'count', bars: true }]} xTicks={chart.ticks} height={160} />}
    </div>
  );
}

export function DatasetVersionPage({ reference }: { reference: string }) {
  const version = useApi<{
    id: string;
    datasetName: string;
    rowCount: number;
    sourceUri: string;
    storedUri: string;
    aliases: string[];
    profile: ColumnProfile[];
    validationReports: {
      id: string;
      passed: boolean;
      errorCount: number;
      warningCount: number;
      createdAt: string;
      issues: Issue[];
      workflowId: string;
    }[];
    lineage: {
      runs: { id: string; status: string; pipelineName: string | null }[];
      modelVersions: { modelName: string; version: number }[];
    };
    createdAt: string;
  }>(`/api/v1/datasets/${enc(reference)}`);
  return (
    <Show loaded={version} what="dataset version">
      {(v) => {
        const report = v.validationReports[0];
        return (
          <div>
            <h2>
              <a href={href(['datasets', v.datasetName])}>{v.datasetName}</a> {v.id.slice(v.datasetName.length)}{' '}
              <Badge value={report ? (report.passed ? 'passed' : 'failed') : 'not validated'} />
            </h2>
            <div className="muted">
              {v.rowCount.toLocaleString()} rows · from {v.sourceUri} · stored {v.storedUri} · {fmtTime(v.createdAt)}{' '}
              {v.aliases.map((a) => `@${a}`).join(' ')}
            </div>
            <Section title="Validation report">
              {report ? (
                <>
                  <div>
                    {report.errorCount} errors, {report.warningCount} warnings ·{' '}
                    <a href={href(['pipelines', report.workflowId])}>{report.workflowId}</a>
                  </div>
                  <Table
                    testId="validation-issues"
                    rows={report.issues}
                    empty="no issues: every check passed"
                    columns={[
                      {
                        title: 'severity',
                        render: (i) => <Badge value={i.severity === 'error' ? 'failed' : i.severity} />,
                      },
                      { title: 'column', render: (i) => <b>{i.column}</b> },
                      { title: 'check', render: (i) => i.check },
                      { title: 'message', render: (i) => i.message },
                      { title: 'failing rows', render: (i) => i.failingRows.toLocaleString() },
                      {
                        title: 'examples (row, line: value)',
                        render: (i) => i.examples.map((e) => `#${e.row} (line ${e.line}): ${e.value}`).join(' · '),
                      },
                    ]}
                  />
                </>
              ) : (
                <div className="muted">not validated</div>
              )}
            </Section>
            <Section title="Profile">
              <div className="profile">
                {v.profile.map((c) => (
                  <ColumnCard key={c.name} column={c} />
                ))}
              </div>
            </Section>
            <Section title="Built from it">
              <ul className="links">
                {v.lineage.runs.map((r) => (
                  <li key={r.id}>
                    run <a href={href(['runs', r.id])}>{r.id.slice(0, 12)}</a> <Badge value={r.status} />{' '}
                    {r.pipelineName}
                  </li>
                ))}
                {v.lineage.modelVersions.map((m) => (
                  <li key={`${m.modelName}${m.version}`}>
                    <a href={href(['models', m.modelName, m.version])}>
                      {m.modelName} v{m.version}
                    </a>
                  </li>
                ))}
              </ul>
            </Section>
          </div>
        );
      }}
    </Show>
  );
}

interface Diff {
  a: { id: string; rowCount: number };
  b: { id: string; rowCount: number };
  schemaChanges: { change: string; column: string; type?: string; from?: string; to?: string }[];
  columns: {
    column: string;
    a: Record<string, number>;
    b: Record<string, number>;
    psi?: number;
    shape?: { a: number[]; b: number[] };
  }[];
}

export function DatasetDiffPage({ route }: { route: Route }) {
  const a = route.query.get('a') ?? '';
  const b = route.query.get('b') ?? '';
  const diff = useApi<Diff>(a && b ? `/api/v1/datasets/${enc(a)}/diff/${enc(b)}` : null);
  return (
    <div>
      <h2>
        Diff {a} → {b}
      </h2>
      <Show loaded={diff} what="diff">
        {(d) => (
          <>
            <Section title="Schema changes">
              <Table
                rows={d.schemaChanges}
                empty="same columns and types"
                columns={[
                  { title: 'change', render: (c) => c.change },
                  { title: 'column', render: (c) => c.column },
                  { title: 'type', render: (c) => c.type ?? `${c.from} → ${c.to}` },
                ]}
              />
            </Section>
            <Section title={`Columns (rows ${d.a.rowCount.toLocaleString()} → ${d.b.rowCount.toLocaleString()})`}>
              <div className="profile">
                {d.columns.map((c) => (
                  <div className="column-card" key={c.column} data-testid={`diff-${c.column}`}>
                    <h4>
                      {c.column} {c.psi !== undefined && <Badge value={`PSI ${fmtNumber(c.psi)}`} />}
                    </h4>
                    <KeyValues
                      values={Object.fromEntries(
                        ['mean', 'std', 'min', 'max', 'nulls', 'distinct']
                          .filter((k) => c.a[k] !== undefined || c.b[k] !== undefined)
                          .map((k) => [k, `${fmtNumber(c.a[k])} → ${fmtNumber(c.b[k])}`]),
                      )}
                    />
                    {c.shape && (
                      <Chart
                        data={[c.shape.a.map((_, i) => i), c.shape.a, c.shape.b]}
                        series={[
                          { label: 'a', bars: true },
                          { label: 'b', bars: true },
                        ]}
                        height={150}
                      />
                    )}
                  </div>
                ))}
              </div>
            </Section>
          </>
        )}
      </Show>
    </div>
  );
}
