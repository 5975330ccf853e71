/**
 * JWT-SVIDs on gRPC: the client attaches `authorization: Bearer <jwt-svid>` for an audience, read from
 * the source on every call (so a rotated token is used at once); the server validates it before the
 * handler runs and answers UNAUTHENTICATED or PERMISSION_DENIED. Tokens are never logged.
 */
import { type CallCredentials, credentials, Metadata, status, type UntypedServiceImplementation } from '@grpc/grpc-js';
import { grpcStatusOf, type JwtAuthResult, type JwtValidator } from '../jwtauth/index.js';
import type { JwtSvidSource } from '../source/index.js';
import { callerId, defineHandler, ownHandlers } from './mtls.js';

/** Call credentials that add the source's current JWT-SVID for `audience` to every call. */
export function jwtCallCredentials(source: JwtSvidSource, audience: string): CallCredentials {
  if (typeof audience !== 'string' || audience === '') throw new TypeError('grpc: an audience is required');
  // grpc-js only reads the generated metadata (it merges it into each call's own), so one object per
  // token serves every call until the source hands out another token.
  let last: { token: string; md: Metadata } | undefined;
  return credentials.createFromMetadataGenerator((_params, callback) => {
    try {
      const token = source.getJwtSvid(audience);
      if (last?.token !== token) {
        const md = new Metadata();
        md.set('authorization', `Bearer ${token}`);
        last = { token, md };
      }
      callback(null, last.md);
    } catch (err) {
      // No token: the call fails here instead of going out unauthenticated.
      callback(err instanceof Error ? err : new Error(String(err)));
    }
  });
}

const results = new WeakMap<object, JwtAuthResult>();

/** The validated JWT-SVID of a call inside a handler wrapped by requireJwtSvidForService. */
export function jwtSvidOfCall(call: object): JwtAuthResult | undefined {
  return results.get(call);
}

interface CallLike {
  metadata: Metadata;
  emit(event: string, ...args: unknown[]): boolean;
}

/**
 * Wraps every handler of a service so that it runs only with a valid JWT-SVID for the validator's
 * audience. When the validator requires the token's subject to equal the mTLS peer, wrap the result
 * with authorizeService (which runs first) so the caller's ID is known.
 */
export function requireJwtSvidForService<T extends UntypedServiceImplementation>(
  handlers: T,
  validator: JwtValidator,
): T {
  const out = ownHandlers();
  for (const [method, handler] of Object.entries(handlers)) {
    defineHandler(out, method, (call: CallLike, callback?: (err: unknown) => void) => {
      const values = call.metadata.get('authorization');
      const header = values.length === 1 && typeof values[0] === 'string' ? values[0] : undefined;
      const run = (res: JwtAuthResult) => {
        results.set(call, res);
        (handler as (c: CallLike, cb?: (err: unknown) => void) => void)(call, callback);
      };
      const refuse = (err: unknown) => {
        const code = grpcStatusOf(err) as status;
        const details =
          code === status.UNAUTHENTICATED
            ? 'a valid JWT-SVID is required'
            : code === status.PERMISSION_DENIED
              ? 'permission denied'
              : 'internal error';
        const statusErr = { code, details };
        if (typeof callback === 'function') callback(statusErr);
        else call.emit('error', statusErr);
      };
      let checked: JwtAuthResult | Promise<JwtAuthResult>;
      try {
        // A remembered token is checked synchronously: no promise per call on the hot path.
        checked = validator.check(header, callerId(call));
      } catch (err) {
        refuse(err);
        return;
      }
      if (checked instanceof Promise) checked.then(run, refuse);
      else run(checked);
    });
  }
  return out as T;
}
