"""The compose stack's Kafka secrets (the `kafka-secrets` service runs
`python -m conveyor.stack.compose_secrets`): the TLS and SCRAM material of
`conveyor.stack.security`, made once in a volume and handed to each container's user."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from conveyor.stack.components import kafka_cluster_id
from conveyor.stack.security import (
    SecurityFiles,
    admin_client_properties,
    ensure_in,
    scram_arguments,
    write_argfile,
)


def main(argv: list[str]) -> None:
    """`python -m conveyor.stack.compose_secrets DIR CONFIG --broker-uid N --client-uid N`: the compose
    stack's secrets volume (the `kafka-secrets` service). Makes the material once, writes the
    storage tool's argument file for CONFIG and a client config for the broker's health check,
    and hands the broker's files to the broker's user and the credentials to Conveyor's."""
    parser = argparse.ArgumentParser(prog="python -m conveyor.stack.compose_secrets")
    parser.add_argument("folder", type=Path)
    parser.add_argument("server_config", help="server.properties inside the Kafka container")
    parser.add_argument("--broker-uid", type=int, required=True)
    parser.add_argument("--client-uid", type=int, required=True)
    parser.add_argument("--host", action="append", default=[], help="broker host name (repeat)")
    args = parser.parse_args(argv)
    files = ensure_in(SecurityFiles(args.folder), tuple(args.host))
    os.chmod(files.root, 0o755)  # each file keeps its own 0600 and owner
    os.chmod(files.ca_pem, 0o644)
    argfile = files.root / "format.args"
    if not argfile.is_file():
        cluster = kafka_cluster_id()
        write_argfile(
            argfile,
            [
                "kafka.tools.StorageTool",
                "format",
                "-t",
                cluster,
                "-c",
                args.server_config,
                *scram_arguments(files),
            ],
        )
    broker_files = [files.broker_store, files.root / "broker.properties", argfile]
    broker_files.append(admin_client_properties(files))
    for path in broker_files:
        os.chown(path, args.broker_uid, -1)
    os.chown(files.credentials_file, args.client_uid, -1)
    print(f"kafka secrets ready in {files.root}")


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
