/** Plain-text tables for people; scripts use `--json` instead. */

/** Renders rows under a header, columns padded to their widest cell, two spaces apart. */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return `${[line(header), ...rows.map(line)].join('\n')}\n`;
}

/** A Unix-seconds time as an RFC 3339 string, or "-" for 0. */
export function isoSeconds(seconds: number): string {
  return seconds > 0 ? new Date(seconds * 1000).toISOString() : '-';
}
