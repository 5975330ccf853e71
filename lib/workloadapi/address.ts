/**
 * The Workload API endpoint address (SPIFFE Workload Endpoint, section 4): an explicit setting, or
 * else SPIFFE_ENDPOINT_SOCKET, as a URI that is `unix:///absolute/path` or `tcp://<IP>:<port>`.
 * Anything else is refused rather than guessed at: a host name would put the endpoint behind DNS,
 * and a relative path would depend on the working directory of whoever reads it.
 */
import { isIPv4, isIPv6 } from 'node:net';
import { SvidkitError } from '../errors/index.js';

/** The environment variable that names the endpoint when no address is configured. */
export const ENDPOINT_SOCKET_ENV = 'SPIFFE_ENDPOINT_SOCKET';

/** Longest address accepted, in characters. */
export const MAX_ADDRESS_LENGTH = 4096;

/** Longest Unix socket path the kernel takes (sun_path is 108 bytes with its terminating NUL). */
export const MAX_UNIX_PATH_BYTES = 107;

function refuse(address: string, why: string): never {
  const shown = address.length > 120 ? `${address.slice(0, 120)}...` : address;
  throw new SvidkitError('ERR_WORKLOADAPI_ADDRESS', `workloadapi: endpoint address ${JSON.stringify(shown)} ${why}`, {
    detail: { reason: why },
  });
}

function decodePath(address: string, raw: string): string {
  let path: string;
  try {
    path = decodeURIComponent(raw);
  } catch {
    refuse(address, 'has an invalid percent-encoding in its path');
  }
  if (path.includes('\0')) refuse(address, 'has a NUL byte in its path');
  return path;
}

function parseUnix(address: string, rest: string): string {
  // `unix:///p` (empty authority) and `unix:/p` (no authority) both name the absolute path /p.
  let path: string;
  if (rest.startsWith('//')) {
    const afterSlashes = rest.slice(2);
    const slash = afterSlashes.indexOf('/');
    const authority = slash < 0 ? afterSlashes : afterSlashes.slice(0, slash);
    if (authority !== '') refuse(address, 'has an authority; a unix address is unix:///absolute/path');
    path = slash < 0 ? '' : afterSlashes.slice(slash);
  } else {
    path = rest;
  }
  if (path.includes('?')) refuse(address, 'has a query; a unix address is unix:///absolute/path');
  if (path.includes('#')) refuse(address, 'has a fragment; a unix address is unix:///absolute/path');
  if (path === '') refuse(address, 'has no path; a unix address is unix:///absolute/path');
  if (!path.startsWith('/')) refuse(address, 'has a relative path; a unix address is unix:///absolute/path');
  const decoded = decodePath(address, path);
  if (decoded === '/' || decoded.endsWith('/')) refuse(address, 'names a directory, not a socket');
  if (Buffer.byteLength(decoded) > MAX_UNIX_PATH_BYTES) {
    refuse(address, `has a path longer than ${MAX_UNIX_PATH_BYTES} bytes, which a Unix socket cannot have`);
  }
  return `unix:${decoded}`;
}

function parseTcp(address: string, rest: string): string {
  if (!rest.startsWith('//')) refuse(address, 'has no authority; a tcp address is tcp://<IP>:<port>');
  const authority = rest.slice(2);
  if (authority.includes('/')) refuse(address, 'has a path; a tcp address is tcp://<IP>:<port> and nothing more');
  if (authority.includes('?')) refuse(address, 'has a query; a tcp address is tcp://<IP>:<port> and nothing more');
  if (authority.includes('#')) refuse(address, 'has a fragment; a tcp address is tcp://<IP>:<port> and nothing more');
  if (authority.includes('@')) refuse(address, 'has user information; a tcp address is tcp://<IP>:<port>');
  let host: string;
  let port: string;
  if (authority.startsWith('[')) {
    const close = authority.indexOf(']');
    if (close < 0) refuse(address, 'has an unclosed IPv6 bracket');
    host = authority.slice(1, close);
    if (!isIPv6(host) || host.includes('%')) refuse(address, 'has a host that is not an IPv6 address');
    if (authority[close + 1] !== ':') refuse(address, 'has no port; a tcp address is tcp://<IP>:<port>');
    port = authority.slice(close + 2);
    host = `[${host}]`;
  } else {
    const colon = authority.lastIndexOf(':');
    if (colon < 0) refuse(address, 'has no port; a tcp address is tcp://<IP>:<port>');
    host = authority.slice(0, colon);
    port = authority.slice(colon + 1);
    if (host === '') refuse(address, 'has no host; a tcp address is tcp://<IP>:<port>');
    if (!isIPv4(host)) {
      refuse(address, isIPv6(host) ? 'has an IPv6 host without brackets' : 'has a host that is not an IP address');
    }
  }
  if (!/^[0-9]{1,5}$/.test(port) || Number(port) < 1 || Number(port) > 65535) {
    refuse(address, 'has a port that is not a number from 1 to 65535');
  }
  return `${host}:${Number(port)}`;
}

/**
 * Parses a Workload API endpoint address and returns the gRPC target for it: `unix:/absolute/path`
 * or `<IP>:<port>` (`[v6]:<port>` for IPv6). Throws ERR_WORKLOADAPI_ADDRESS naming what is wrong.
 */
export function parseEndpointAddress(address: string): string {
  if (typeof address !== 'string') throw new TypeError('workloadapi: endpoint address must be a string');
  if (address.length === 0) refuse(address, 'is empty');
  if (address.length > MAX_ADDRESS_LENGTH) refuse(address, `is longer than ${MAX_ADDRESS_LENGTH} characters`);
  for (let i = 0; i < address.length; i++) {
    const c = address.charCodeAt(i);
    if (c <= 0x20 || c === 0x7f) refuse(address, 'contains a space or a control character');
  }
  const colon = address.indexOf(':');
  const scheme = colon < 0 ? '' : address.slice(0, colon);
  if (!/^[A-Za-z][A-Za-z0-9+.-]*$/.test(scheme)) {
    refuse(address, 'is not a URI; expected unix:///absolute/path or tcp://<IP>:<port>');
  }
  const rest = address.slice(colon + 1);
  switch (scheme.toLowerCase()) {
    case 'unix':
      return parseUnix(address, rest);
    case 'tcp':
      return parseTcp(address, rest);
    default:
      refuse(address, `has the scheme "${scheme}"; only unix and tcp are allowed`);
  }
}

/**
 * The endpoint to use: `address` when given, else SPIFFE_ENDPOINT_SOCKET from `env`; parsed as
 * parseEndpointAddress does. ERR_WORKLOADAPI_ADDRESS when neither is set.
 */
export function resolveEndpointAddress(address?: string, env: NodeJS.ProcessEnv = process.env): string {
  if (address !== undefined) return parseEndpointAddress(address);
  const fromEnv = env[ENDPOINT_SOCKET_ENV];
  if (fromEnv === undefined || fromEnv === '') {
    throw new SvidkitError(
      'ERR_WORKLOADAPI_ADDRESS',
      `workloadapi: no endpoint address: pass one or set ${ENDPOINT_SOCKET_ENV}`,
      { detail: { reason: 'unset' } },
    );
  }
  return parseEndpointAddress(fromEnv);
}
