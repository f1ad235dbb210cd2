"""Probes a daypass server's standard gRPC services as a stock Python
client does (tests/python.rs runs it): server reflection v1alpha (what
grpcio-reflection speaks) and v1 (the same messages on the v1 path), and
the standard health check for every service reflection lists.

Usage: probe_services.py HOST:PORT CA CERT KEY
Prints one JSON object: {"v1alpha": [...], "v1": [...], "health": {name: status}}.
"""

import json
import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc


def channel(addr, ca, cert, key):
    creds = grpc.ssl_channel_credentials(
        root_certificates=open(ca, "rb").read(),
        private_key=open(key, "rb").read(),
        certificate_chain=open(cert, "rb").read(),
    )
    # The test server's certificate names localhost and 127.0.0.1.
    return grpc.secure_channel(addr, creds, options=[("grpc.ssl_target_name_override", "localhost")])


def list_services(stream_call):
    request = reflection_pb2.ServerReflectionRequest(list_services="")
    responses = stream_call(iter([request]), timeout=10)
    names = []
    for r in responses:
        if r.HasField("error_response"):
            raise SystemExit("reflection error: %s" % r.error_response.error_message)
        names.extend(s.name for s in r.list_services_response.service)
    return sorted(names)


def main():
    addr, ca, cert, key = sys.argv[1:5]
    ch = channel(addr, ca, cert, key)
    v1alpha = list_services(reflection_pb2_grpc.ServerReflectionStub(ch).ServerReflectionInfo)
    # grpcio-reflection has only v1alpha stubs; v1's messages are the same,
    # so the same serializers work on the v1 method path.
    v1_call = ch.stream_stream(
        "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
        request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
        response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
    )
    v1 = list_services(v1_call)
    health = health_pb2_grpc.HealthStub(ch)
    statuses = {}
    for name in v1alpha:
        if name.startswith("grpc."):
            continue
        try:
            r = health.Check(health_pb2.HealthCheckRequest(service=name), timeout=10)
            statuses[name] = health_pb2.HealthCheckResponse.ServingStatus.Name(r.status)
        except grpc.RpcError as e:
            statuses[name] = e.code().name
    print(json.dumps({"v1alpha": v1alpha, "v1": v1, "health": statuses}))


if __name__ == "__main__":
    main()
