"""``python tests/milvus_server.py --data-dir DIR --port N [--token T]``: Milvus Lite's own gRPC server (the
``milvus-lite server`` command's code) on 127.0.0.1, for the tests that reach Milvus over the network as a cluster
is reached.

Milvus Lite has no authentication. With ``--token`` a gRPC interceptor refuses calls whose ``authorization``
metadata is not that token, answering UNAUTHENTICATED as an authenticating Milvus proxy does, so the wrong-token
path of the client is tested against a real server.
"""

from __future__ import annotations

import argparse
import base64
from concurrent import futures

import grpc
from milvus_lite.adapter.grpc.servicer import MilvusServicer
from milvus_lite.db import MilvusLite
from pymilvus.grpc_gen import milvus_pb2_grpc

AUTH_FAILURE = "auth check failure, please check username, password or API key are correct"


class TokenCheck(grpc.ServerInterceptor):
    def __init__(self, token: str) -> None:
        self.expected = base64.b64encode(token.encode()).decode()

    def intercept_service(self, continuation, handler_call_details):
        metadata = dict(handler_call_details.invocation_metadata)
        if metadata.get("authorization") == self.expected:
            return continuation(handler_call_details)

        def refuse(request, context):
            context.abort(grpc.StatusCode.UNAUTHENTICATED, AUTH_FAILURE)

        return grpc.unary_unary_rpc_method_handler(refuse)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--token", default="")
    args = parser.parse_args()
    db = MilvusLite(args.data_dir)
    interceptors = [TokenCheck(args.token)] if args.token else []
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=10), interceptors=interceptors)
    milvus_pb2_grpc.add_MilvusServiceServicer_to_server(MilvusServicer(db), server)
    server.add_insecure_port(f"127.0.0.1:{args.port}")
    server.start()
    print(f"milvus lite serving {args.data_dir} on 127.0.0.1:{args.port}", flush=True)
    try:
        server.wait_for_termination()
    finally:
        server.stop(grace=2)
        db.close()


if __name__ == "__main__":
    main()
