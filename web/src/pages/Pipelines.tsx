// Pipelines: recent runs, and one run's stages on a timeline (queue wait vs run time per activity, from its Temporal
// history), with its result and a link to its Temporal UI page.
import { enc } from '../api';
import { Badge, ErrorBox, fmtDuration, fmtTime, KeyValues, Section, Show, Table, useApi } from '../components/common';
import { href } from '../router';
import type { StageStatus } from '../types';

interface PipelineRow {
  workflowId: string;
  status: string;
  startedAt: string;
  closedAt: string | null;
  model: string | null;
  pipeline: string | null;
  uiUrl: string;
}

export function PipelinesPage() {
  const pipelines = useApi<{ pipelines: PipelineRow[] }>('/api/v1/pipelines?limit=100');
  return (
    <div>
      <h2>Pipelines</h2>
      <Show loaded={pipelines} what="pipelines">
        {({ pipelines: list }) => (
          <Table
            testId="pipelines-table"
            rows={list}
            empty="no pipeline runs yet"
            columns={[
              { title: 'workflow', render: (p) => <a href={href(['pipelines', p.workflowId])}>{p.workflowId}</a> },
              { title: 'status', render: (p) => <Badge value={p.status} /> },
              { title: 'pipeline', render: (p) => p.pipeline ?? '' },
              { title: 'model', render: (p) => (p.model ? <a href={href(['models', p.model])}>{p.model}</a> : '') },
              { title: 'started', render: (p) => fmtTime(p.startedAt) },
              {
                title: 'took',
                render: (p) => (p.closedAt ? fmtDuration(Date.parse(p.closedAt) - Date.parse(p.startedAt)) : 'running'),
              },
              {
                title: 'Temporal',
                render: (p) => (
                  <a href={p.uiUrl} target="_blank" rel="noreferrer">
                    open ↗
                  </a>
                ),
              },
            ]}
          />
        )}
      </Show>
    </div>
  );
}

interface Step {
  kind: string;
  name: string;
  taskQueue: string | null;
  scheduledAt: number | null;
  startedAt: number | null;
  closedAt: number | null;
  status: string;
  attempt: number | null;
}

interface Timeline {
  status: string;
  startedAt: string;
  closedAt: string | null;
  stages: StageStatus[];
  steps: Step[];
  uiUrl: string;
}

/** Bars on one time axis: grey is the wait in the task queue, colour the run. */
function Gantt({ timeline }: { timeline: Timeline }) {
  const origin = Date.parse(timeline.startedAt);
  const end = Math.max(
    timeline.closedAt ? Date.parse(timeline.closedAt) : Date.now(),
    ...timeline.steps.map((s) => s.closedAt ?? s.startedAt ?? s.scheduledAt ?? origin),
  );
  const span = Math.max(1, end - origin);
  const pct = (t: number) => `${(((t - origin) / span) * 100).toFixed(3)}%`;
  const width = (a: number, b: number) => `${Math.max(0.2, ((b - a) / span) * 100).toFixed(3)}%`;
  return (
    <div className="gantt" data-testid="timeline">
      {timeline.steps.map((s, i) => {
        const scheduled = s.scheduledAt ?? origin;
        const started = s.startedAt ?? s.closedAt ?? end;
        const closed = s.closedAt ?? end;
        return (
          <div className="gantt-row" key={i}>
            <div className="gantt-label" title={s.taskQueue ?? ''}>
              {s.name}
              {s.attempt && s.attempt > 1 ? ` (attempt ${s.attempt})` : ''}
            </div>
            <div className="gantt-track">
              <div className="gantt-wait" style={{ left: pct(scheduled), width: width(scheduled, started) }} />
              <div className={`gantt-run ${s.status}`} style={{ left: pct(started), width: width(started, closed) }} />
            </div>
            <div className="gantt-time">
              wait {fmtDuration(started - scheduled)} · run {s.startedAt ? fmtDuration(closed - started) : '—'}
            </div>
          </div>
        );
      })}
      <div className="muted">0 → {fmtDuration(span)} · grey: waiting in the task queue; colour: running</div>
    </div>
  );
}

export function PipelinePage({ id }: { id: string }) {
  const pipeline = useApi<{
    status: string;
    model: string | null;
    pipeline: string | null;
    startedAt: string;
    closedAt: string | null;
    stages: StageStatus[];
    result?: {
      datasetVersionId: string;
      runId: string;
      metrics: Record<string, number>;
      model: { name: string; version: number } | null;
      deployment: { alias: string; previousVersion: number | null } | null;
      monitorWorkflowId: string | null;
    };
    failure?: string;
    uiUrl: string;
  }>(`/api/v1/pipelines/${enc(id)}`);
  const timeline = useApi<Timeline>(`/api/v1/pipelines/${enc(id)}/timeline`);
  return (
    <Show loaded={pipeline} what="pipeline">
      {(p) => (
        <div>
          <h2>
            Pipeline {id} <Badge value={p.status} />
          </h2>
          <div className="muted">
            {p.pipeline} · model {p.model} · started {fmtTime(p.startedAt)}
            {p.closedAt ? ` · took ${fmtDuration(Date.parse(p.closedAt) - Date.parse(p.startedAt))}` : ''} ·{' '}
            <a href={p.uiUrl} target="_blank" rel="noreferrer" data-testid="temporal-link">
              Temporal UI ↗
            </a>
          </div>
          <ErrorBox error={p.failure} />
          <Section title="Stages">
            <Table
              testId="stages"
              rows={p.stages}
              columns={[
                { title: 'stage', render: (s) => s.name },
                { title: 'status', render: (s) => <Badge value={s.status} /> },
                {
                  title: 'took',
                  render: (s) => (s.startedAt && s.endedAt ? fmtDuration(s.endedAt - s.startedAt) : ''),
                },
                { title: 'summary', render: (s) => s.summary ?? '' },
              ]}
            />
          </Section>
          <Section title="Timeline">
            {timeline.data ? <Gantt timeline={timeline.data} /> : <ErrorBox error={timeline.error} />}
          </Section>
          {p.result && (
            <Section title="Result">
              <ul className="links">
                <li>
                  dataset <a href={href(['datasets', p.result.datasetVersionId])}>{p.result.datasetVersionId}</a>
                </li>
                <li>
                  run <a href={href(['runs', p.result.runId])}>{p.result.runId}</a>
                </li>
                {p.result.model && (
                  <li>
                    model{' '}
                    <a href={href(['models', p.result.model.name, p.result.model.version])}>
                      {p.result.model.name} v{p.result.model.version}
                    </a>
                    {p.result.deployment
                      ? ` → @${p.result.deployment.alias} (was ${p.result.deployment.previousVersion === null ? 'none' : `v${p.result.deployment.previousVersion}`})`
                      : ' (not deployed)'}
                  </li>
                )}
                {p.result.monitorWorkflowId && p.result.model && (
                  <li>
                    monitor <a href={href(['monitors', p.result.model.name])}>{p.result.monitorWorkflowId}</a>
                  </li>
                )}
              </ul>
              <KeyValues values={p.result.metrics} />
            </Section>
          )}
        </div>
      )}
    </Show>
  );
}
