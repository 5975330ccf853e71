/**
 * Summarises a .cpuprofile (from `node --cpu-prof` or BENCH_AGENT_PROFILE) by self time: the top
 * functions, and the totals per file or package, so that a profile can be read in a terminal.
 *
 *   node dist/bench/cpuprofile.js <file.cpuprofile> [top=25]
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/** A row of the summary: a name and its self time in milliseconds. */
export interface SelfTime {
  readonly name: string;
  readonly ms: number;
}

/** Where a URL belongs: its npm package, a node: builtin, or the project file. */
function place(url: string): string {
  if (url === '') return '(native/vm)';
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) return pkg[1]!;
  if (url.startsWith('node:')) return url;
  const own = /\/dist\/(.*)$/.exec(url);
  return own ? own[1]! : url;
}

/** Self time by function and by place (package or file), largest first. */
export function summarise(p: Profile): { total: number; byFunction: SelfTime[]; byPlace: SelfTime[] } {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  p.samples.forEach((id, i) => self.set(id, (self.get(id) ?? 0) + (p.timeDeltas[i] ?? 0)));
  const fn = new Map<string, number>();
  const where = new Map<string, number>();
  let total = 0;
  for (const [id, us] of self) {
    const n = byId.get(id)!;
    const f = n.callFrame;
    const name = `${f.functionName || '(anonymous)'} ${place(f.url)}${f.url ? `:${f.lineNumber + 1}` : ''}`;
    fn.set(name, (fn.get(name) ?? 0) + us);
    where.set(place(f.url), (where.get(place(f.url)) ?? 0) + us);
    total += us;
  }
  const rows = (m: Map<string, number>) =>
    [...m].map(([name, us]) => ({ name, ms: us / 1000 })).sort((a, b) => b.ms - a.ms);
  return { total: total / 1000, byFunction: rows(fn), byPlace: rows(where) };
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const [file, topText] = process.argv.slice(2);
  if (!file) throw new Error('usage: cpuprofile.js <file.cpuprofile> [top]');
  const top = Number(topText ?? 25);
  const s = summarise(JSON.parse(readFileSync(file, 'utf8')) as Profile);
  const line = (r: SelfTime) =>
    `${r.ms.toFixed(0).padStart(8)} ms ${((100 * r.ms) / s.total).toFixed(1).padStart(5)}%  ${r.name}`;
  process.stdout.write(`total sampled ${s.total.toFixed(0)} ms\n\nby place (self time):\n`);
  for (const r of s.byPlace.slice(0, top)) process.stdout.write(`${line(r)}\n`);
  process.stdout.write(`\nby function (self time):\n`);
  for (const r of s.byFunction.slice(0, top)) process.stdout.write(`${line(r)}\n`);
}
