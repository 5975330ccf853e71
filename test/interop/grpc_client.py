"""Calls svidkit's gRPC services from Python's grpcio (gRPC C-core) over mTLS with SVID files.

Usage:
    grpc_client.py --stubs DIR --target HOST:PORT --server-name NAME --roots FILE
                   [--cert FILE --key FILE] CALL...

CALL is one of
    health:SERVICE   grpc.health.v1.Health/Check for SERVICE (empty for the whole server)
    entries          svidkit.ca.v1.Node/ListAuthorizedEntries

DIR holds the stubs generated at test time from the repository's protos/. The first output line is
a JSON object with the versions in use; then one JSON line per call with the status code name and
the reply. The exit status is 0 when every call was made, whatever the status codes.
"""

import argparse
import json
import os
import sys

import google.protobuf
import grpc


def load_stubs(stubs):
    """Imports the generated modules from DIR."""
    # health.proto's package is grpc.health.v1, so its modules are generated as grpc/health/v1/*.py:
    # under the name of grpcio's own package. Put that directory first in the grpc package's path.
    grpc.__path__.insert(0, os.path.join(stubs, "grpc"))
    sys.path.insert(0, stubs)
    from grpc.health.v1 import health_pb2, health_pb2_grpc
    from svidkit.ca.v1 import ca_pb2, ca_pb2_grpc

    return health_pb2, health_pb2_grpc, ca_pb2, ca_pb2_grpc


def read(path):
    with open(path, "rb") as f:
        return f.read()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--stubs", required=True)
    parser.add_argument("--target", required=True)
    parser.add_argument("--server-name", required=True)
    parser.add_argument("--roots", required=True)
    parser.add_argument("--cert")
    parser.add_argument("--key")
    parser.add_argument("calls", nargs="+")
    args = parser.parse_args()

    health_pb2, health_pb2_grpc, ca_pb2, ca_pb2_grpc = load_stubs(args.stubs)
    print(
        json.dumps(
            {
                "grpcio": grpc.__version__,
                "protobuf": google.protobuf.__version__,
                "python": sys.version.split()[0],
                "executable": sys.executable,
            }
        ),
        flush=True,
    )

    credentials = grpc.ssl_channel_credentials(
        root_certificates=read(args.roots),
        private_key=read(args.key) if args.key else None,
        certificate_chain=read(args.cert) if args.cert else None,
    )
    # C-core checks the server certificate's DNS names against this name; the address stays an IP.
    options = [("grpc.ssl_target_name_override", args.server_name)]
    with grpc.secure_channel(args.target, credentials, options) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        node = ca_pb2_grpc.NodeStub(channel)
        for call in args.calls:
            out = {"call": call}
            try:
                if call.startswith("health:"):
                    reply = health.Check(
                        health_pb2.HealthCheckRequest(service=call[len("health:") :]), timeout=15
                    )
                    out["status"] = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
                elif call == "entries":
                    reply = node.ListAuthorizedEntries(ca_pb2.ListAuthorizedEntriesRequest(), timeout=15)
                    out["spiffe_ids"] = sorted(e.spiffe_id for e in reply.entries)
                else:
                    parser.error(f"unknown call {call}")
                out["code"] = grpc.StatusCode.OK.name
            except grpc.RpcError as err:
                out["code"] = err.code().name
                out["details"] = err.details()
            print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
