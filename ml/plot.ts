/** Small dependency-free SVG line charts, stored as run artifacts (e.g. the loss curves). */

export interface Series { name: string; points: { x: number; y: number }[] }

const COLORS = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b'];
const esc = (text: string) => text.replace(/[<>&"]/g, (c) => `&#${c.charCodeAt(0)};`);
const num = (v: number) => String(Number(v.toPrecision(4)));

export function lineChartSvg(title: string, series: Series[], labels: { x: string; y: string }, width = 640, height = 360): string {
  const all = series.flatMap((s) => s.points).filter((p) => Number.isFinite(p.y));
  const pad = { left: 64, right: 16, top: 36, bottom: 44 };
  const minX = Math.min(...all.map((p) => p.x)), maxX = Math.max(...all.map((p) => p.x));
  let minY = Math.min(...all.map((p) => p.y)), maxY = Math.max(...all.map((p) => p.y));
  if (!(maxY > minY)) { minY -= 1; maxY += 1; }
  const sx = (x: number) => pad.left + (maxX > minX ? ((x - minX) / (maxX - minX)) * (width - pad.left - pad.right) : 0);
  const sy = (y: number) => height - pad.bottom - ((y - minY) / (maxY - minY)) * (height - pad.top - pad.bottom);
  const ticks = [0, 0.25, 0.5, 0.75, 1].map((t) => minY + t * (maxY - minY));
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${width / 2}" y="20" text-anchor="middle" font-size="14">${esc(title)}</text>`,
    ...ticks.map((t) => `<line x1="${pad.left}" x2="${width - pad.right}" y1="${sy(t)}" y2="${sy(t)}" stroke="#eee"/><text x="${pad.left - 6}" y="${sy(t) + 4}" text-anchor="end">${num(t)}</text>`),
    `<line x1="${pad.left}" x2="${width - pad.right}" y1="${height - pad.bottom}" y2="${height - pad.bottom}" stroke="#333"/>`,
    `<text x="${pad.left}" y="${height - pad.bottom + 16}" text-anchor="middle">${num(minX)}</text><text x="${width - pad.right}" y="${height - pad.bottom + 16}" text-anchor="end">${num(maxX)}</text>`,
    `<text x="${width / 2}" y="${height - 8}" text-anchor="middle">${esc(labels.x)}</text>`,
    `<text x="14" y="${height / 2}" text-anchor="middle" transform="rotate(-90 14 ${height / 2})">${esc(labels.y)}</text>`,
  ];
  series.forEach((s, i) => {
    const color = COLORS[i % COLORS.length];
    const points = s.points.filter((p) => Number.isFinite(p.y));
    parts.push(`<polyline fill="none" stroke="${color}" stroke-width="2" points="${points.map((p) => `${sx(p.x).toFixed(1)},${sy(p.y).toFixed(1)}`).join(' ')}"/>`);
    parts.push(`<text x="${width - pad.right - 4}" y="${pad.top + 14 * (i + 1)}" text-anchor="end" fill="${color}">${esc(s.name)}</text>`);
  });
  parts.push('</svg>');
  return parts.join('\n');
}
