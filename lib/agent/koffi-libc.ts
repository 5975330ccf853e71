/**
 * libc.so.6 through koffi, loaded once for the agent's calls Node lacks (the pidfd syscalls in
 * reload-pidfd.ts, the peer credentials and clocks in caller/libc.ts). Loaded lazily and through
 * require, so an agent on a host without koffi's binary still starts and only those features are off.
 */
import { createRequire } from 'node:module';
import { arch, platform } from 'node:process';
import type { LibraryHandle } from 'koffi';

/** koffi itself (for errno) and the loaded libc. */
export interface KoffiLibc {
  readonly koffi: typeof import('koffi');
  readonly lib: LibraryHandle;
}

let loaded: KoffiLibc | string | undefined;

/**
 * koffi and libc, or why they are not available: `numbers` names what the caller's constants are
 * (the generic syscall and socket numbers are those of x86-64 and arm64 only). The reason is kept,
 * not retried.
 */
export function koffiLibc(numbers: string): KoffiLibc | string {
  if (platform !== 'linux' || (arch !== 'x64' && arch !== 'arm64')) {
    return `${numbers} unknown on ${platform}/${arch}`;
  }
  if (loaded === undefined) {
    try {
      const koffi = createRequire(import.meta.url)('koffi') as typeof import('koffi');
      loaded = { koffi, lib: koffi.load('libc.so.6') };
    } catch (err) {
      loaded = `koffi did not load (${err instanceof Error ? err.message.split('\n')[0] : String(err)})`;
    }
  }
  return loaded;
}
