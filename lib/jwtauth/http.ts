/**
 * HTTP middleware for plain node:http / node:https handlers (and anything with the same (req, res,
 * next) shape): refuses requests without a valid JWT-SVID for this service before the handler runs.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { SpiffeId } from '../spiffeid/index.js';
import { httpStatusOf, type JwtAuthResult, type JwtValidator } from './validator.js';

/** Options of requireJwtSvid. */
export interface RequireJwtSvidOptions {
  /**
   * Called with every failure before the default response. It may write its own response (the
   * default is then skipped) or only observe, e.g. log `err.code`. The error never holds the token.
   */
  onError?: (err: unknown, req: IncomingMessage, res: ServerResponse) => void;
  /** The mTLS peer's SPIFFE ID, required when the validator has requireSubjectEquals. */
  peerIdOf?: (req: IncomingMessage) => SpiffeId | undefined;
}

/** A (req, res, next) middleware; the promise settles once the request was refused or next() returned. */
export type JwtMiddleware = (req: IncomingMessage, res: ServerResponse, next: () => void) => Promise<void>;

const results = new WeakMap<IncomingMessage, JwtAuthResult>();

/** The validation result stored by requireJwtSvid for a request that passed it. */
export function getJwtSvidOf(req: IncomingMessage): JwtAuthResult | undefined {
  return results.get(req);
}

const BODY: Readonly<Record<number, string>> = {
  401: 'unauthorized\n',
  403: 'forbidden\n',
  500: 'internal error\n',
};

function presentedBearer(req: IncomingMessage): boolean {
  const h = req.headers.authorization;
  return typeof h === 'string' && /^bearer ./i.test(h);
}

function respond(err: unknown, req: IncomingMessage, res: ServerResponse): void {
  if (res.headersSent || res.writableEnded) return;
  const status = httpStatusOf(err);
  res.statusCode = status;
  res.setHeader('Content-Type', 'text/plain; charset=utf-8');
  res.setHeader('Cache-Control', 'no-store');
  if (status === 401) {
    // RFC 6750 section 3: no error code when no bearer token was sent, invalid_token when one was.
    res.setHeader('WWW-Authenticate', presentedBearer(req) ? 'Bearer error="invalid_token"' : 'Bearer');
  }
  res.end(BODY[status]);
}

/**
 * Middleware that validates the request's Authorization header with `validator`. On failure it
 * answers 401 (with WWW-Authenticate: Bearer), 403, or 500 for server-side faults, with a short fixed
 * body, and does not call next; on success it stores the result (getJwtSvidOf(req)) and calls next().
 */
export function requireJwtSvid(validator: JwtValidator, options: RequireJwtSvidOptions = {}): JwtMiddleware {
  if (typeof validator?.check !== 'function') throw new TypeError('jwtauth: validator must be a JwtValidator');
  const { onError, peerIdOf } = options;
  if (onError !== undefined && typeof onError !== 'function')
    throw new TypeError('jwtauth: onError must be a function');
  if (peerIdOf !== undefined && typeof peerIdOf !== 'function') {
    throw new TypeError('jwtauth: peerIdOf must be a function');
  }
  if (validator.requiresPeerId && peerIdOf === undefined) {
    // Without it every request would be refused; say so now rather than with a wall of 403s.
    throw new TypeError('jwtauth: the validator requires the subject to equal the peer ID; pass peerIdOf');
  }

  return async (req, res, next) => {
    let result: JwtAuthResult;
    try {
      // check() answers a remembered token without a promise; only a first sight is awaited.
      const checked = validator.check(req.headers.authorization, peerIdOf?.(req));
      result = checked instanceof Promise ? await checked : checked;
    } catch (err) {
      try {
        onError?.(err, req, res);
      } finally {
        respond(err, req, res);
      }
      return;
    }
    results.set(req, result);
    next();
  };
}
