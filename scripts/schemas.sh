#!/usr/bin/env bash
# Regenerates the checked-in JSON Schemas from the Rust types (the tests fail
# when one is stale): the manifest's, the control protocol's and the status
# array's. Run it after changing a manifest, request, reply, event or status
# type, and commit what it writes.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --quiet --bin berth
berth=target/debug/berth
"$berth" schema >schemas/backend.schema.json
"$berth" schema --protocol >schemas/protocol.schema.json
"$berth" schema --status >schemas/status.schema.json
echo "schemas/: backend, protocol and status schemas regenerated" >&2
