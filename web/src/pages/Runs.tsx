// Experiments and runs: the runs table (filter language, sorting, windowed), a run's page, and the compare view.
import { useCallback, useEffect, useMemo, useState } from 'react';
import { api, download, enc, q } from '../api';
import { Chart, alignSeries, ParallelCoordinates } from '../components/Chart';
import {
  Badge,
  ErrorBox,
  fmtDuration,
  fmtNumber,
  fmtTime,
  KeyValues,
  Section,
  Show,
  Table,
  useApi,
} from '../components/common';
import { VirtualTable, type Column } from '../components/VirtualTable';
import { href, navigate, type Route } from '../router';
import type { MetricSeries, Run } from '../types';

const PAGE = 50_000;

/** Every page of a search, up to `max` runs. */
async function searchAll(params: { filter?: string; orderBy?: string; experiment?: string }, max: number) {
  const runs: Run[] = [];
  let pageToken: string | undefined;
  do {
    const page = await api<{ runs: Run[]; nextPageToken?: string }>(
      `/api/v1/runs${q({ ...params, limit: Math.min(PAGE, max - runs.length), pageToken })}`,
    );
    runs.push(...page.runs);
    pageToken = page.nextPageToken;
  } while (pageToken && runs.length < max);
  return { runs, more: Boolean(pageToken) };
}

const flat = (value: unknown) =>
  typeof value === 'object' && value !== null ? JSON.stringify(value) : fmtNumber(value);

/** The keys most runs carry, at most `n`. */
function commonKeys(rows: Record<string, unknown>[], n: number): string[] {
  const counts = new Map<string, number>();
  for (const row of rows.slice(0, 2000))
    for (const key of Object.keys(row)) counts.set(key, (counts.get(key) ?? 0) + 1);
  return [...counts.entries()]
    .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
    .slice(0, n)
    .map(([key]) => key);
}

export function RunsPage({ route }: { route: Route }) {
  const filter = route.query.get('filter') ?? '';
  const orderBy = route.query.get('orderBy') ?? '';
  const experiment = route.query.get('experiment') ?? '';
  const max = Number(route.query.get('max') ?? 10_000);
  const [draft, setDraft] = useState(filter);
  const [result, setResult] = useState<{ runs: Run[]; more: boolean; ms: number }>();
  const [error, setError] = useState<Error>();
  const [selected, setSelected] = useState<Set<string>>(new Set());
  const experiments = useApi<{ experiments: { name: string }[] }>('/api/v1/experiments?limit=1000');

  useEffect(() => setDraft(filter), [filter]);
  useEffect(() => {
    let live = true;
    setError(undefined);
    const started = performance.now();
    performance.mark('runs:fetch');
    searchAll(
      { filter: filter || undefined, orderBy: orderBy || undefined, experiment: experiment || undefined },
      max,
    ).then(
      (found) => {
        if (!live) return;
        performance.mark('runs:data');
        setResult({ ...found, ms: performance.now() - started });
      },
      (failure: Error) => live && setError(failure),
    );
    return () => {
      live = false;
    };
  }, [filter, orderBy, experiment, max]);

  const go = (changes: Record<string, string | undefined>) =>
    navigate(href(['runs'], { filter, orderBy, experiment, max: route.query.get('max') ?? undefined, ...changes }));
  const sort = useMemo(() => {
    const match = /^(.+?)\s+(asc|desc)$/i.exec(orderBy.trim());
    return match ? { key: match[1]!, descending: match[2]!.toLowerCase() === 'desc' } : undefined;
  }, [orderBy]);
  const onSort = (key: string) => go({ orderBy: `${key} ${sort?.key === key && !sort.descending ? 'DESC' : 'ASC'}` });

  const runs = result?.runs;
  const columns = useMemo<Column<Run>[]>(() => {
    const metricKeys = commonKeys(runs?.map((r) => r.metrics) ?? [], 6);
    const paramKeys = commonKeys(runs?.map((r) => r.params) ?? [], 4);
    const toggle = (id: string) =>
      setSelected((old) => {
        const next = new Set(old);
        if (next.has(id)) next.delete(id);
        else next.add(id);
        return next;
      });
    return [
      {
        key: 'select',
        title: '',
        width: 32,
        render: (r) => (
          <input
            type="checkbox"
            aria-label={`select ${r.id}`}
            checked={selected.has(r.id)}
            onChange={() => toggle(r.id)}
          />
        ),
      },
      {
        key: 'run',
        title: 'run',
        width: 220,
        sortKey: 'attributes.run_name',
        render: (r) => <a href={href(['runs', r.id])}>{r.name || r.id.slice(0, 12)}</a>,
      },
      {
        key: 'experiment',
        title: 'experiment',
        width: 170,
        sortKey: 'attributes.experiment',
        render: (r) => r.experiment,
      },
      {
        key: 'status',
        title: 'status',
        width: 90,
        sortKey: 'attributes.status',
        render: (r) => <Badge value={r.status} />,
      },
      {
        key: 'started',
        title: 'started',
        width: 160,
        sortKey: 'attributes.start_time',
        render: (r) => fmtTime(r.startedAt),
      },
      {
        key: 'duration',
        title: 'duration',
        width: 80,
        render: (r) => (r.endedAt ? fmtDuration(Date.parse(r.endedAt) - Date.parse(r.startedAt)) : ''),
      },
      ...metricKeys.map<Column<Run>>((key) => ({
        key: `m:${key}`,
        title: key,
        width: 110,
        sortKey: `metrics.${key}`,
        render: (r) => fmtNumber(r.metrics[key]),
      })),
      ...paramKeys.map<Column<Run>>((key) => ({
        key: `p:${key}`,
        title: `${key} (param)`,
        width: 120,
        sortKey: `params.${key}`,
        render: (r) => flat(r.params[key]),
      })),
    ];
  }, [runs, selected]);

  const onRendered = useCallback(() => {
    if (!runs) return;
    // After the frame that shows the rows has been painted.
    requestAnimationFrame(() =>
      setTimeout(() => {
        performance.mark('runs:rendered');
        performance.measure('runs-table-render', 'runs:data', 'runs:rendered');
      }, 0),
    );
  }, [runs]);

  return (
    <div>
      <h2>Runs</h2>
      <form
        className="toolbar"
        onSubmit={(e) => {
          e.preventDefault();
          go({ filter: draft });
        }}
      >
        <select value={experiment} onChange={(e) => go({ experiment: e.target.value })} aria-label="experiment">
          <option value="">all experiments</option>
          {experiments.data?.experiments.map((x) => (
            <option key={x.name} value={x.name}>
              {x.name}
            </option>
          ))}
        </select>
        <input
          className="grow"
          name="filter"
          placeholder="metrics.rmse < 7 and (params.lr = 0.01 or tags.team = 'ml')"
          value={draft}
          onChange={(e) => setDraft(e.target.value)}
        />
        <button type="submit">Filter</button>
        <button
          type="button"
          disabled={selected.size < 2}
          onClick={() => navigate(href(['compare'], { runs: [...selected].join(',') }))}
        >
          Compare ({selected.size})
        </button>
      </form>
      <ErrorBox error={error} />
      {result && (
        <div className="muted" data-testid="runs-count">
          {result.runs.length.toLocaleString()} runs
          {result.more ? ` (first ${max.toLocaleString()}; narrow the filter)` : ''} · fetched in{' '}
          {fmtDuration(result.ms)}
          {orderBy ? ` · ordered by ${orderBy}` : ''}
        </div>
      )}
      {runs && (
        <VirtualTable
          testId="runs-table"
          rows={runs}
          columns={columns}
          rowKey={(r) => r.id}
          sort={sort}
          onSort={onSort}
          onRendered={onRendered}
        />
      )}
    </div>
  );
}

/** One chart per metric key, the runs overlaid (x = step). */
function Curves({ runs, series }: { runs: { id: string; label: string }[]; series: MetricSeries[] }) {
  useMemo(() => performance.mark('curves:data'), [series]);
  const keys = [...new Set(series.flatMap((s) => Object.keys(s.series)))].sort();
  const charts = useMemo(
    () =>
      keys.map((key) => {
        const present = series
          .map((s, i) => ({ run: runs[i]!, points: s.series[key] ?? [] }))
          .filter((s) => s.points.length > 0);
        const data = alignSeries(
          present.map((s) => ({ x: s.points.map((p) => p.step), y: s.points.map((p) => Number(p.value)) })),
        );
        return { key, data, specs: present.map((s) => ({ label: s.run.label })) };
      }),
    [series],
  );
  if (!keys.length) return <div className="muted">no step metrics logged</div>;
  return (
    <div className="charts">
      {charts.map((c) => (
        <Chart
          key={c.key}
          testId={`curve-${c.key}`}
          title={c.key}
          data={c.data}
          series={c.specs}
          xLabel="step"
          mark={`curve:${c.key}`}
        />
      ))}
    </div>
  );
}

function Artifacts({ run }: { run: Run }) {
  const [path, setPath] = useState('');
  const listing = useApi<{ files?: { path: string; is_dir: boolean; file_size?: number }[] }>(
    `/api/2.0/mlflow/artifacts/list${q({ run_id: run.id, path })}`,
  );
  const [error, setError] = useState<Error>();
  const root = run.artifactUri.replace(/^mlflow-artifacts:\//, '');
  if (listing.error) return <div className="muted">{listing.error.message}</div>;
  const files = listing.data?.files ?? [];
  return (
    <div>
      {path && (
        <button className="link" onClick={() => setPath(path.split('/').slice(0, -1).join('/'))}>
          ↑ {path}
        </button>
      )}
      <ErrorBox error={error} />
      <Table
        testId="artifacts"
        rows={files}
        empty="no artifacts logged"
        columns={[
          {
            title: 'artifact',
            render: (f) =>
              f.is_dir ? (
                <button className="link" onClick={() => setPath(f.path)}>
                  {f.path}/
                </button>
              ) : (
                <button
                  className="link"
                  onClick={() =>
                    download(`/api/2.0/mlflow-artifacts/artifacts/${root}/${f.path}`, f.path.split('/').pop()!).catch(
                      setError,
                    )
                  }
                >
                  ⤓ {f.path}
                </button>
              ),
          },
          { title: 'size', render: (f) => (f.file_size === undefined ? '' : `${f.file_size.toLocaleString()} B`) },
        ]}
      />
    </div>
  );
}

function SweepTrials({ run }: { run: Run }) {
  const trials = useApi<{ runs: Run[] }>(
    `/api/v1/runs${q({ filter: `attributes.sweep = '${run.sweepId}'`, limit: 500 })}`,
  );
  return (
    <Show loaded={trials} what="sweep trials">
      {({ runs }) => {
        const paramKeys = [...new Set(runs.flatMap((r) => Object.keys(r.params)))]
          .filter((k) => runs.some((r) => JSON.stringify(r.params[k]) !== JSON.stringify(runs[0]!.params[k])))
          .sort();
        const metricKey =
          ['val_loss', 'objective', 'loss'].find((k) => runs.some((r) => k in r.metrics)) ??
          Object.keys(runs[0]?.metrics ?? {})[0];
        const dimensions = [...paramKeys, ...(metricKey ? [metricKey] : [])];
        const rows = runs.map((r) => [
          ...paramKeys.map((k) => {
            const v = r.params[k];
            return typeof v === 'number' ? v : v === undefined ? undefined : JSON.stringify(v);
          }),
          ...(metricKey ? [r.metrics[metricKey]] : []),
        ]);
        return (
          <>
            <ParallelCoordinates
              dimensions={dimensions}
              rows={rows}
              labels={runs.map((r) => `trial ${r.trial ?? '?'}${r.id === run.id ? ' (this run)' : ''}`)}
            />
            <div className="muted">
              {runs.length} trials of sweep {run.sweepId};{' '}
              <a href={href(['compare'], { runs: runs.map((r) => r.id).join(',') })}>compare all</a>
            </div>
          </>
        );
      }}
    </Show>
  );
}

export function RunPage({ id }: { id: string }) {
  const run = useApi<{ run: Run }>(`/api/v1/runs/${enc(id)}`);
  const metrics = useApi<MetricSeries>(`/api/v1/runs/${enc(id)}/metrics`);
  const versions = useApi<{ modelVersions: { name: string; version: number }[] }>(
    `/api/v1/runs/${enc(id)}/model-versions`,
  );
  return (
    <Show loaded={run} what="run">
      {({ run: r }) => (
        <div>
          <h2>
            Run {r.name || r.id} <Badge value={r.status} />
          </h2>
          <div className="muted">
            {r.id} · experiment <a href={href(['runs'], { experiment: r.experiment })}>{r.experiment}</a> · started{' '}
            {fmtTime(r.startedAt)}
            {r.endedAt ? ` · took ${fmtDuration(Date.parse(r.endedAt) - Date.parse(r.startedAt))}` : ''}
          </div>
          {r.error && <ErrorBox error={r.error} />}
          <div className="cols">
            <Section title="Metrics">
              <KeyValues values={r.metrics} testId="run-metrics" />
            </Section>
            <Section title="Params">
              <KeyValues values={r.params} />
            </Section>
            <Section title="Lineage">
              <KeyValues
                values={{
                  pipeline: r.pipelineName,
                  workflow: r.workflowId,
                  dataset: r.datasetVersionId,
                  backend: r.backend,
                  queue: r.taskQueue,
                  seed: r.seed,
                  code: r.codeVersion,
                }}
              />
              <ul className="links">
                {r.workflowId && (
                  <li>
                    <a href={href(['pipelines', r.workflowId.replace(/-sweep(-.*)?$/, '')])}>pipeline timeline</a>
                  </li>
                )}
                {r.datasetVersionId && (
                  <li>
                    <a href={href(['datasets', r.datasetVersionId])}>dataset version {r.datasetVersionId}</a>
                  </li>
                )}
                {versions.data?.modelVersions.map((v) => (
                  <li key={`${v.name}:${v.version}`}>
                    registered as{' '}
                    <a href={href(['models', v.name, v.version])}>
                      {v.name} v{v.version}
                    </a>
                  </li>
                ))}
              </ul>
            </Section>
          </div>
          <Section title="Curves">
            <Show loaded={metrics} what="curves">
              {(series) => <Curves runs={[{ id: r.id, label: r.name || r.id.slice(0, 8) }]} series={[series]} />}
            </Show>
          </Section>
          {r.sweepId && (
            <Section title="Sweep trials (parallel coordinates)">
              <SweepTrials run={r} />
            </Section>
          )}
          <Section title="Artifacts">
            <Artifacts run={r} />
          </Section>
          <Section title="Tags">
            <KeyValues values={r.tags} />
          </Section>
        </div>
      )}
    </Show>
  );
}

export function ComparePage({ route }: { route: Route }) {
  const ids = (route.query.get('runs') ?? '').split(',').filter(Boolean);
  const [loaded, setLoaded] = useState<{ runs: Run[]; series: MetricSeries[] }>();
  const [error, setError] = useState<Error>();
  useEffect(() => {
    let live = true;
    Promise.all([
      Promise.all(ids.map((id) => api<{ run: Run }>(`/api/v1/runs/${enc(id)}`).then((x) => x.run))),
      Promise.all(ids.map((id) => api<MetricSeries>(`/api/v1/runs/${enc(id)}/metrics`))),
    ]).then(
      ([runs, series]) => live && setLoaded({ runs, series }),
      (failure: Error) => live && setError(failure),
    );
    return () => {
      live = false;
    };
  }, [ids.join(',')]);
  if (ids.length < 2) return <ErrorBox error="select two or more runs in the runs table to compare them" />;
  if (error) return <ErrorBox error={error} />;
  if (!loaded) return <div className="muted">Loading {ids.length} runs …</div>;
  const { runs, series } = loaded;
  const label = (r: Run) => r.name || r.id.slice(0, 8);
  const paramKeys = [...new Set(runs.flatMap((r) => Object.keys(r.params)))].sort();
  const metricKeys = [...new Set(runs.flatMap((r) => Object.keys(r.metrics)))].sort();
  const cell = (value: unknown) => (value === undefined ? '—' : flat(value));
  return (
    <div>
      <h2>Compare {runs.length} runs</h2>
      <Section title="Curves (runs overlaid)">
        <Curves runs={runs.map((r) => ({ id: r.id, label: label(r) }))} series={series} />
      </Section>
      <Section title="Params (differences marked)">
        <table className="grid" data-testid="compare-params">
          <thead>
            <tr>
              <th>param</th>
              {runs.map((r) => (
                <th key={r.id}>
                  <a href={href(['runs', r.id])}>{label(r)}</a>
                </th>
              ))}
            </tr>
          </thead>
          <tbody>
            {paramKeys.map((key) => {
              const values = runs.map((r) => cell(r.params[key]));
              const differs = new Set(values).size > 1;
              return (
                <tr key={key} className={differs ? 'differs' : ''}>
                  <th>
                    {differs ? '≠ ' : ''}
                    {key}
                  </th>
                  {values.map((v, i) => (
                    <td key={i}>{v}</td>
                  ))}
                </tr>
              );
            })}
          </tbody>
        </table>
      </Section>
      <Section title="Metrics side by side">
        <table className="grid" data-testid="compare-metrics">
          <thead>
            <tr>
              <th>metric</th>
              {runs.map((r) => (
                <th key={r.id}>{label(r)}</th>
              ))}
            </tr>
          </thead>
          <tbody>
            {metricKeys.map((key) => (
              <tr key={key}>
                <th>{key}</th>
                {runs.map((r) => (
                  <td key={r.id}>{cell(r.metrics[key])}</td>
                ))}
              </tr>
            ))}
          </tbody>
        </table>
      </Section>
    </div>
  );
}
