/** The node agent: configuration, the Agent, the atomic file writer, and rotation timing. */
export { Agent, type AgentOptions, type AgentSettings, type WorkloadSettings, type WorkloadStatus } from './agent.js';
export { type AuthorizedEntry, readAuthorizedEntries, type RefusedEntry } from './ca-client.js';
export { type AgentConfig, loadAgentConfig, parseAgentConfig } from './config.js';
export { agentSettings, readStatus, runAgent, type RunningAgent } from './daemon.js';
export { runReload, type ReloadAction } from './reload.js';
export { Backoff, backoffDelay, renewalTime } from './schedule.js';
export { DEFAULT_FILE_NAMES, type FileNames } from '../layout/index.js';
export { writeWorkloadFiles } from './writer.js';
