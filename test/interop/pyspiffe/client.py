"""A SPIFFE workload written with py-spiffe (the `spiffe` package): fetches its identities from a
Workload API server (a SPIRE agent, or svidkit-agent) the way a Python service does, and prints one
JSON object per line so the interop tests can assert on it.

Usage:
  client.py x509     [--socket unix:///path] [--timeout S]
  client.py jwt      --audience A [--audience B ...] [--spiffe-id ID] [--socket ...]
  client.py validate --audience A --token T [--socket ...]
  client.py version

Without --socket the address comes from SPIFFE_ENDPOINT_SOCKET, as py-spiffe reads it. A failure
prints {"error": ..., "code": ...} (code is the gRPC status name when the server answered with one)
and exits 1; a usage error exits 2.
"""

import argparse
import datetime
import json
import sys

import grpc
from importlib.metadata import version as dist_version

from spiffe import JwtSvid, SpiffeId, WorkloadApiClient

# A token passed on the command line or stdin larger than this is refused before it is sent.
MAX_TOKEN = 64 * 1024


def emit(obj):
    sys.stdout.write(json.dumps(obj, sort_keys=True) + "\n")
    sys.stdout.flush()


def grpc_code(err):
    """The gRPC status name behind a py-spiffe error (it wraps the RpcError as the cause)."""
    seen = set()
    e = err
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, grpc.Call):
            return e.code().name
        e = e.__cause__ or e.__context__
    return None


def fail(what, err):
    out = {"error": f"{what}: {err}"}
    code = grpc_code(err)
    if code:
        out["code"] = code
    emit(out)
    sys.exit(1)


def chain_verifies(chain, authorities):
    """Each certificate is signed by the next, and the last by one of the bundle's authorities."""
    for child, parent in zip(chain, chain[1:]):
        child.verify_directly_issued_by(parent)
    last = chain[-1]
    for root in authorities:
        try:
            last.verify_directly_issued_by(root)
            return True
        except Exception:
            continue
    return False


def cmd_x509(args, client):
    try:
        ctx = client.fetch_x509_context()
    except Exception as e:
        fail("fetch_x509_context", e)
    svid = ctx.default_svid
    leaf = svid.leaf
    bundle = ctx.x509_bundle_set.get_bundle_for_trust_domain(svid.spiffe_id.trust_domain)
    authorities = list(bundle.x509_authorities) if bundle else []
    now = datetime.datetime.now(datetime.timezone.utc)
    emit(
        {
            "spiffe_id": str(svid.spiffe_id),
            "svids": [str(s.spiffe_id) for s in ctx.x509_svids],
            "chain_length": len(svid.cert_chain),
            "serial": format(leaf.serial_number, "x"),
            "not_after": leaf.not_valid_after_utc.isoformat(),
            "bundle_size": len(authorities),
            "verified": bool(authorities)
            and chain_verifies(svid.cert_chain, authorities)
            and leaf.not_valid_before_utc <= now <= leaf.not_valid_after_utc,
            "key_type": type(svid.private_key).__name__,
        }
    )


def cmd_jwt(args, client):
    subject = None
    if args.spiffe_id:
        try:
            subject = SpiffeId(args.spiffe_id)
        except Exception as e:
            print(f"client.py: --spiffe-id: {e}", file=sys.stderr)
            sys.exit(2)
    audience = set(args.audience)
    try:
        svid = client.fetch_jwt_svid(audience=audience, subject=subject)
    except Exception as e:
        fail("fetch_jwt_svid", e)
    try:
        bundles = client.fetch_jwt_bundles()
    except Exception as e:
        fail("fetch_jwt_bundles", e)
    out = {
        "spiffe_id": str(svid.spiffe_id),
        "audience": sorted(svid.audience),
        "expiry": svid.expiry,
        "token": svid.token,
    }
    # Check the signature offline with the JWT bundle of the subject's trust domain.
    bundle = bundles.get_bundle_for_trust_domain(svid.spiffe_id.trust_domain)
    try:
        if bundle is None:
            raise ValueError("no JWT bundle for the subject's trust domain")
        JwtSvid.parse_and_validate(svid.token, bundle, {args.audience[0]})
        out["verified"] = True
    except Exception as e:
        out["verified"] = False
        out["verify_error"] = str(e)
    emit(out)


def cmd_validate(args, client):
    token = args.token
    if token == "-":
        token = sys.stdin.read(MAX_TOKEN + 1).strip()
    if len(token) > MAX_TOKEN:
        print("client.py: token too large", file=sys.stderr)
        sys.exit(2)
    try:
        svid = client.validate_jwt_svid(token=token, audience=args.audience)
    except Exception as e:
        fail("validate_jwt_svid", e)
    emit({"spiffe_id": str(svid.spiffe_id), "audience": sorted(svid.audience)})


def main():
    parser = argparse.ArgumentParser(prog="client.py")
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("version")
    for name in ("x509", "jwt", "validate"):
        p = sub.add_parser(name)
        p.add_argument("--socket", help="Workload API address (default: SPIFFE_ENDPOINT_SOCKET)")
        p.add_argument("--timeout", type=float, default=30.0, help="deadline in seconds for each call")
        if name == "jwt":
            p.add_argument("--audience", action="append", required=True)
            p.add_argument("--spiffe-id")
        if name == "validate":
            p.add_argument("--audience", required=True)
            p.add_argument("--token", required=True, help="the compact JWT-SVID, or - for stdin")
    args = parser.parse_args()
    if args.cmd == "version":
        emit({"python": sys.version.split()[0], "spiffe": dist_version("spiffe"), "grpcio": grpc.__version__})
        return
    if not 0 < args.timeout <= 600:
        print("client.py: --timeout must be in (0, 600]", file=sys.stderr)
        sys.exit(2)
    try:
        client = WorkloadApiClient(socket_path=args.socket, default_timeout=args.timeout)
    except Exception as e:
        fail("WorkloadApiClient", e)
    with client:
        {"x509": cmd_x509, "jwt": cmd_jwt, "validate": cmd_validate}[args.cmd](args, client)


if __name__ == "__main__":
    main()
