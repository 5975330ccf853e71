/**
 * Stages the svidkit-daemons package: copies the built daemons, CLI and the library modules they run on
 * (dist/lib without the demo mesh, dist/cmd) and the CA's protos into the package directory given as the
 * only argument, so that `npm pack -w svidkit-daemons` packs a self-contained package. Run after
 * `npm run build`; packages/svidkit-daemons/package.json's prepack does both.
 */
import { cpSync, existsSync, rmSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root: this file is built to dist/tools/. */
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Built or source paths (relative to the repository, '/'-separated) the daemons package leaves out. */
const LEFT_OUT = [/^dist\/lib\/mesh(\/|$)/, /\.map$/, /^protos\/svidkit\/demo(\/|$)/, /^protos\/README\.md$/];

/** Whether a repository-relative path goes into the daemons package. */
export function shipsInDaemons(path: string): boolean {
  return !LEFT_OUT.some((re) => re.test(path));
}

/** Copies what the daemons package ships into `target` (its dist/ and protos/ are replaced). */
export function stageDaemons(target: string): void {
  if (!existsSync(join(ROOT, 'dist', 'cmd', 'svidkit-ca.js'))) {
    throw new Error('stage-daemons: dist/cmd is not built; run `npm run build` first');
  }
  for (const dir of ['dist', 'protos']) rmSync(join(target, dir), { recursive: true, force: true });
  const filter = (src: string): boolean => shipsInDaemons(relative(ROOT, src).split(sep).join('/'));
  for (const from of [join('dist', 'lib'), join('dist', 'cmd'), 'protos']) {
    cpSync(join(ROOT, from), join(target, from), { recursive: true, filter });
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const target = process.argv[2];
  if (target === undefined) {
    process.stderr.write('usage: node dist/tools/stage-daemons.js <package directory>\n');
    process.exit(2);
  }
  stageDaemons(resolve(target));
}
