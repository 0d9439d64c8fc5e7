/**
 * Postgres' side of a latency bench's pauses: pg_stat_activity sampled every `everyMs` on a connection of its own
 * (what each client backend waited on, by the kind of query it ran; autovacuum workers and what they worked on), and
 * the checkpointer's and the watched tables' counters before and after (checkpoints, autovacuum, autoanalyze). Times
 * are epoch milliseconds, as in bench/pauseProbe.ts.
 */
import type pg from 'pg';

export interface PgWaitReport {
  samples: number;
  /** `<query kind> <wait_event_type>:<wait_event>` → samples in which an active backend waited so. */
  waits: Record<string, number>;
  /** Samples in which a lookup waited on a heavyweight lock (time, what it waited for), up to 100. */
  lookup_lock_waits: { at: number; wait: string }[];
  /** Autovacuum / autoanalyze seen running: its query and the first and last sample it was seen in. */
  autovacuum: { query: string; from: number; to: number }[];
  checkpoints: { timed: number; requested: number; write_ms: number; sync_ms: number; buffers: number };
  tables: Record<string, { autovacuum: number; autoanalyze: number; dead_tuples_after: number }>;
}

/** The kind of a statement, from its text: what the benches run beside each other. */
export function queryKind(query: string): string {
  if (/FROM online_features WHERE view = \$1 AND entity_key/.test(query)) return 'lookup';
  if (/^\s*INSERT INTO online_features/.test(query)) return 'materialize';
  if (/online_features/.test(query) && /^\s*DELETE/i.test(query)) return 'materialize-delete';
  if (/insert into "?predictions"?/i.test(query)) return 'prediction-log';
  if (/pg_stat_activity/.test(query)) return 'sampler';
  return 'other';
}

interface Counters {
  checkpoints: PgWaitReport['checkpoints'];
  tables: Record<string, { autovacuum: number; autoanalyze: number; dead: number }>;
}

async function counters(client: pg.PoolClient, tables: string[]): Promise<Counters> {
  // pg_stat_checkpointer is Postgres 17's; older servers keep the same counters in pg_stat_bgwriter.
  const cp = await client
    .query<{ timed: string; requested: string; write_ms: string; sync_ms: string; buffers: string }>(
      'SELECT num_timed AS timed, num_requested AS requested, write_time AS write_ms, sync_time AS sync_ms, buffers_written AS buffers FROM pg_stat_checkpointer',
    )
    .catch(() =>
      client.query<{ timed: string; requested: string; write_ms: string; sync_ms: string; buffers: string }>(
        'SELECT checkpoints_timed AS timed, checkpoints_req AS requested, checkpoint_write_time AS write_ms, checkpoint_sync_time AS sync_ms, buffers_checkpoint AS buffers FROM pg_stat_bgwriter',
      ),
    );
  const t = await client.query<{ relname: string; autovacuum: string; autoanalyze: string; dead: string }>(
    'SELECT relname, autovacuum_count AS autovacuum, autoanalyze_count AS autoanalyze, n_dead_tup AS dead FROM pg_stat_user_tables WHERE relname = ANY($1)',
    [tables],
  );
  const c = cp.rows[0]!;
  return {
    checkpoints: {
      timed: Number(c.timed),
      requested: Number(c.requested),
      write_ms: Number(c.write_ms),
      sync_ms: Number(c.sync_ms),
      buffers: Number(c.buffers),
    },
    tables: Object.fromEntries(
      t.rows.map((r) => [
        r.relname,
        { autovacuum: Number(r.autovacuum), autoanalyze: Number(r.autoanalyze), dead: Number(r.dead) },
      ]),
    ),
  };
}

/** Starts sampling; `stop()` ends it and reports the window. */
export async function watchPostgres(
  pool: pg.Pool,
  tables: string[],
  everyMs = 20,
): Promise<{ stop(): Promise<PgWaitReport> }> {
  const client = await pool.connect();
  // Statistics are cached per transaction; a sample outside one always reads fresh ones.
  const before = await counters(client, tables);
  const report: PgWaitReport = {
    samples: 0,
    waits: {},
    lookup_lock_waits: [],
    autovacuum: [],
    checkpoints: before.checkpoints,
    tables: {},
  };
  let stopping = false;
  const loop = (async () => {
    while (!stopping) {
      const at = Date.now();
      const { rows } = await client.query<{ backend_type: string; wait: string | null; query: string }>(
        `SELECT backend_type, wait_event_type || ':' || wait_event AS wait, query FROM pg_stat_activity
          WHERE (datname = current_database() AND state = 'active' AND pid <> pg_backend_pid()) OR backend_type = 'autovacuum worker'`,
      );
      report.samples++;
      for (const row of rows) {
        if (row.backend_type === 'autovacuum worker') {
          const seen = report.autovacuum.find((a) => a.query === row.query && at - a.to < 1_000);
          if (seen) seen.to = at;
          else report.autovacuum.push({ query: row.query, from: at, to: at });
          continue;
        }
        if (row.backend_type !== 'client backend' || !row.wait || row.wait === 'Client:ClientRead') continue;
        const kind = queryKind(row.query);
        report.waits[`${kind} ${row.wait}`] = (report.waits[`${kind} ${row.wait}`] ?? 0) + 1;
        if (kind === 'lookup' && row.wait.startsWith('Lock:') && report.lookup_lock_waits.length < 100)
          report.lookup_lock_waits.push({ at, wait: row.wait });
      }
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, everyMs - (Date.now() - at))));
    }
  })();
  return {
    async stop() {
      stopping = true;
      await loop;
      const after = await counters(client, tables);
      client.release();
      const b = before.checkpoints;
      const a = after.checkpoints;
      report.checkpoints = {
        timed: a.timed - b.timed,
        requested: a.requested - b.requested,
        write_ms: a.write_ms - b.write_ms,
        sync_ms: a.sync_ms - b.sync_ms,
        buffers: a.buffers - b.buffers,
      };
      for (const [name, t] of Object.entries(after.tables))
        report.tables[name] = {
          autovacuum: t.autovacuum - (before.tables[name]?.autovacuum ?? 0),
          autoanalyze: t.autoanalyze - (before.tables[name]?.autoanalyze ?? 0),
          dead_tuples_after: t.dead,
        };
      return report;
    },
  };
}

/** One line for a bench's stderr. */
export function describePgWaits(report: PgWaitReport): string {
  const waits = Object.entries(report.waits)
    .sort((a, b) => b[1] - a[1])
    .slice(0, 6)
    .map(([what, n]) => `${what} ${n}`)
    .join(', ');
  const tables = Object.entries(report.tables)
    .map(([name, t]) => `${name} autovacuum ${t.autovacuum}, autoanalyze ${t.autoanalyze}`)
    .join('; ');
  const c = report.checkpoints;
  return (
    `postgres: ${report.samples} samples; waits ${waits || 'none'}; lookups waiting on a lock in ${report.lookup_lock_waits.length} samples; ` +
    `checkpoints ${c.timed} timed + ${c.requested} requested (write ${(c.write_ms / 1000).toFixed(1)} s, sync ${(c.sync_ms / 1000).toFixed(2)} s, ${c.buffers} buffers); ${tables}` +
    `${report.autovacuum.length ? `; autovacuum ran: ${report.autovacuum.map((a) => `${a.query.replace(/^autovacuum: /, '')} (${((a.to - a.from) / 1000).toFixed(1)} s)`).join(', ')}` : ''}`
  );
}
