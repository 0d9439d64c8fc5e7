// Small shared pieces: data loading, errors, verdict badges, number and time formats, key/value tables.
import { useCallback, useEffect, useState, type ReactNode } from 'react';
import { api } from '../api';

export interface Loaded<T> {
  data: T | undefined;
  error: Error | undefined;
  loading: boolean;
  reload(): void;
}

/** GETs `path` (null: nothing yet) and again when it changes or `reload()` is called. */
export function useApi<T>(path: string | null): Loaded<T> {
  const [state, setState] = useState<{ data?: T; error?: Error; loading: boolean }>({ loading: path !== null });
  const [tick, setTick] = useState(0);
  useEffect(() => {
    if (path === null) return;
    let live = true;
    setState((s) => ({ ...s, loading: true }));
    api<T>(path).then(
      (data) => live && setState({ data, loading: false }),
      (error: Error) => live && setState({ error, loading: false }),
    );
    return () => {
      live = false;
    };
  }, [path, tick]);
  const reload = useCallback(() => setTick((t) => t + 1), []);
  return { data: state.data, error: state.error, loading: state.loading, reload };
}

export function ErrorBox({ error }: { error: Error | string | undefined }) {
  if (!error) return null;
  return (
    <div className="error" role="alert" data-testid="error">
      {typeof error === 'string' ? error : error.message}
    </div>
  );
}

export function Loading({ what }: { what: string }) {
  return <div className="muted">Loading {what} …</div>;
}

/** Renders the error, a loading line, or the children with the data. */
export function Show<T>({
  loaded,
  what,
  children,
}: {
  loaded: Loaded<T>;
  what: string;
  children: (data: T) => ReactNode;
}) {
  if (loaded.error) return <ErrorBox error={loaded.error} />;
  if (loaded.data === undefined) return <Loading what={what} />;
  return <>{children(loaded.data)}</>;
}

const GOOD = new Set(['passed', 'finished', 'completed', 'active', 'ok', 'resolved', 'done', 'approved']);
const BAD = new Set([
  'failed',
  'critical',
  'open',
  'drift',
  'killed',
  'terminated',
  'timed_out',
  'rejected',
  'canceled',
]);
export function Badge({ value }: { value: string | null | undefined }) {
  if (value === null || value === undefined) return <span className="badge">—</span>;
  const lower = value.toLowerCase();
  const tone = GOOD.has(lower) ? 'good' : BAD.has(lower) ? 'bad' : 'neutral';
  return <span className={`badge ${tone}`}>{value}</span>;
}

export function fmtNumber(value: unknown): string {
  if (typeof value !== 'number') return value === null || value === undefined ? '' : String(value);
  if (!Number.isFinite(value)) return String(value);
  if (Number.isInteger(value)) return String(value);
  const abs = Math.abs(value);
  if (abs !== 0 && (abs < 1e-3 || abs >= 1e6)) return value.toExponential(3);
  return abs >= 1000 ? String(Math.round(value * 10) / 10) : String(Number(value.toPrecision(4)));
}

export function fmtTime(value: string | number | Date | null | undefined): string {
  if (value === null || value === undefined) return '';
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? String(value) : date.toISOString().replace('T', ' ').slice(0, 19);
}

export function fmtDuration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return '';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  if (ms < 3_600_000) return `${Math.floor(ms / 60_000)} m ${Math.round((ms % 60_000) / 1000)} s`;
  return `${(ms / 3_600_000).toFixed(1)} h`;
}

export function KeyValues({ values, testId }: { values: Record<string, unknown>; testId?: string }) {
  const entries = Object.entries(values);
  if (!entries.length) return <div className="muted">none</div>;
  return (
    <table className="kv" data-testid={testId}>
      <tbody>
        {entries.map(([key, value]) => (
          <tr key={key}>
            <th>{key}</th>
            <td>{typeof value === 'object' && value !== null ? JSON.stringify(value) : fmtNumber(value)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

export function Section({ title, children, actions }: { title: string; children: ReactNode; actions?: ReactNode }) {
  return (
    <section className="card">
      <header>
        <h3>{title}</h3>
        {actions}
      </header>
      {children}
    </section>
  );
}

/** A plain table for short lists (windowing is for the long ones: components/VirtualTable). */
export function Table<T>({
  rows,
  columns,
  testId,
  empty = 'none',
}: {
  rows: T[];
  columns: { title: string; render: (row: T) => ReactNode }[];
  testId?: string;
  empty?: string;
}) {
  if (!rows.length) return <div className="muted">{empty}</div>;
  return (
    <table className="grid" data-testid={testId}>
      <thead>
        <tr>
          {columns.map((c) => (
            <th key={c.title}>{c.title}</th>
          ))}
        </tr>
      </thead>
      <tbody>
        {rows.map((row, i) => (
          <tr key={i}>
            {columns.map((c) => (
              <td key={c.title}>{c.render(row)}</td>
            ))}
          </tr>
        ))}
      </tbody>
    </table>
  );
}
