/**
 * What `svidkit-agent status` prints for people: the file workloads, then the Workload API entries,
 * each as a table. Scripts read `--json` instead, which carries the same status file unchanged.
 */
import { table } from '../cli/table.js';
import type { WorkloadStatus } from './agent-types.js';
import type { ApiEntryStatus } from './api-identities.js';

/** The status file as `svidkit-agent status` reads it; an agent before the Workload API wrote no entries. */
export interface AgentStatusDocument {
  readonly agent: string | null;
  readonly written_at: string;
  readonly workloads: readonly WorkloadStatus[];
  readonly workload_api_entries?: readonly ApiEntryStatus[];
}

const WORKLOAD_HEADER = ['SPIFFE ID', 'EXPIRES', 'NEXT ROTATION', 'ROTATIONS', 'LAST ERROR'];
const API_ENTRY_HEADER = ['SPIFFE ID', 'SELECTORS', 'EXPIRES', 'NEXT ROTATION', 'ROTATIONS', 'LAST ERROR'];

/**
 * The text of `svidkit-agent status`. The Workload API table appears only when the agent holds such
 * entries, so the output of an agent that serves files alone is what it has always been.
 */
export function formatAgentStatus(status: AgentStatusDocument): string {
  let out = `agent: ${status.agent ?? '(not attested)'}   (as of ${status.written_at})\n`;
  out += table(
    WORKLOAD_HEADER,
    status.workloads.map((w) => [
      w.spiffeId,
      w.expiresAt ?? '-',
      w.nextRotation ?? '-',
      String(w.rotations),
      w.lastError ?? '',
    ]),
  );
  const entries = Array.isArray(status.workload_api_entries) ? status.workload_api_entries : [];
  if (entries.length === 0) return out;
  out += '\nWorkload API entries:\n';
  out += table(
    API_ENTRY_HEADER,
    entries.map((e) => [
      e.spiffeId,
      e.selectors.join(','),
      e.expiresAt ?? '-',
      e.nextRotation ?? '-',
      String(e.rotations),
      e.lastError ?? '',
    ]),
  );
  return out;
}
