// A windowed table: only the rows in view (plus a margin) are in the DOM, so 100,000 rows render as fast as 50.
import { useLayoutEffect, useRef, useState, type ReactNode } from 'react';

export interface Column<T> {
  key: string;
  title: string;
  width: number;
  render(row: T): ReactNode;
  /** Clicking the header sorts by this (e.g. `metrics.rmse`); absent: not sortable. */
  sortKey?: string;
}

export function VirtualTable<T>({
  rows,
  columns,
  rowKey,
  rowHeight = 28,
  height = 560,
  sort,
  onSort,
  onRendered,
  testId,
}: {
  rows: T[];
  columns: Column<T>[];
  rowKey(row: T): string;
  rowHeight?: number;
  height?: number;
  sort?: { key: string; descending: boolean };
  onSort?(key: string): void;
  /** Called after rows are in the DOM (for performance marks). */
  onRendered?(): void;
  testId?: string;
}) {
  const [top, setTop] = useState(0);
  const scroller = useRef<HTMLDivElement>(null);
  const overscan = 10;
  const first = Math.max(0, Math.floor(top / rowHeight) - overscan);
  const last = Math.min(rows.length, Math.ceil((top + height) / rowHeight) + overscan);
  const width = columns.reduce((sum, c) => sum + c.width, 0);
  useLayoutEffect(() => {
    onRendered?.();
  }, [rows, onRendered]);
  useLayoutEffect(() => {
    // A new result set starts at its top.
    if (scroller.current) scroller.current.scrollTop = 0;
    setTop(0);
  }, [rows]);
  const visible = rows.slice(first, last);
  return (
    <div className="vtable" data-testid={testId} data-rows={rows.length}>
      <div className="vhead" style={{ width }}>
        {columns.map((c) => (
          <div
            key={c.key}
            className={`vcell${c.sortKey ? ' sortable' : ''}`}
            style={{ width: c.width }}
            onClick={c.sortKey && onSort ? () => onSort(c.sortKey!) : undefined}
            title={c.sortKey ? `sort by ${c.sortKey}` : undefined}
          >
            {c.title}
            {sort && c.sortKey === sort.key ? (sort.descending ? ' ▼' : ' ▲') : ''}
          </div>
        ))}
      </div>
      <div className="vbody" ref={scroller} style={{ height }} onScroll={(e) => setTop(e.currentTarget.scrollTop)}>
        <div style={{ height: rows.length * rowHeight, width, position: 'relative' }}>
          {visible.map((row, i) => (
            <div
              key={rowKey(row)}
              className="vrow"
              data-testid="vrow"
              style={{ top: (first + i) * rowHeight, height: rowHeight, width }}
            >
              {columns.map((c) => (
                <div key={c.key} className="vcell" style={{ width: c.width }}>
                  {c.render(row)}
                </div>
              ))}
            </div>
          ))}
        </div>
      </div>
    </div>
  );
}
