#!/bin/sh
# Regenerate the committed *_pb2.py/.pyi from the .proto files beside them (dev time
# only; the service needs just the `protobuf` runtime, whose major version must match
# the "Protobuf Python Version" the generated files name). From the repository root:
#   .venv/bin/pip install grpcio-tools && sh services/anomaly/remote_write/proto/regenerate.sh
set -e
cd "$(dirname "$0")/../../../.."
P=services/anomaly/remote_write/proto
.venv/bin/python -m grpc_tools.protoc -I. --python_out=. --pyi_out=. "$P/types.proto" "$P/remote.proto" "$P/lazy.proto"
for f in "$P"/*_pb2.py "$P"/*_pb2.pyi; do  # generated: not linted, only formatted
  printf '# ruff: noqa\n%s\n' "$(cat "$f")" > "$f"
done
.venv/bin/ruff format -q "$P"
