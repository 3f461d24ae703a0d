#!/bin/sh
# Long-running reliability measurements (see docs/reliability.md):
#   - a mixed CONNECT/HTTP soak (SOAK_SECS, default 120; SOAK_CLIENTS, default 300)
#     that must finish with zero errors and flat memory;
#   - the resident memory of IDLE_TUNNELS (default 9000) idle CONNECT tunnels.
# Both run inside a private network namespace, like the other end-to-end tests.
# Needs: unshare (util-linux), ip (iproute2), user namespaces, and an
# open-files limit of at least 2 x IDLE_TUNNELS + 100 (ulimit -n).
set -eu
cd "$(dirname "$0")/.."
exec cargo test --release --test soak -- --ignored --nocapture --test-threads=1 "$@"
