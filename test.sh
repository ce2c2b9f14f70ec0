#!/usr/bin/env bash
# Builds the solution and runs every test project; ends with "tests: N passed, N failed, N skipped".
# Installs what a fresh machine lacks (the .NET SDK must already be there).
set -euo pipefail
cd "$(dirname "$0")"

export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1

if ! command -v dotnet >/dev/null 2>&1; then
  echo "The .NET 10 SDK is required (dotnet not found on PATH)." >&2
  exit 1
fi

# The browser tests drive Debian's Chromium (never a downloaded browser build).
if [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" -eq 0 ]; then
    apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium
  else
    sudo apt-get update && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y chromium
  fi
fi

# The multi-node tests start a real RabbitMQ node from Debian's package (never a container).
if [ ! -x /usr/sbin/rabbitmq-server ]; then
  if [ "$(id -u)" -eq 0 ]; then
    apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y rabbitmq-server
  else
    sudo apt-get update && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y rabbitmq-server
  fi
fi

configuration="${CONFIGURATION:-Debug}"
results="$(pwd)/artifacts/test-results"
rm -rf "$results"
mkdir -p "$results"

dotnet build Ingest.sln -c "$configuration" -nologo -clp:ErrorsOnly

status=0
dotnet test Ingest.sln -c "$configuration" --no-build -nologo \
  --logger "trx" --logger "console;verbosity=minimal" \
  --results-directory "$results" "$@" || status=$?

if [ "$status" -ne 0 ]; then
  echo "dotnet test exited with $status" >&2
fi

python3 - "$results" <<'PY'
import glob, sys, xml.etree.ElementTree as ET
ns = {"t": "http://microsoft.com/schemas/VisualStudio/TeamTest/2010"}
passed = failed = skipped = 0
for path in glob.glob(sys.argv[1] + "/**/*.trx", recursive=True):
    counters = ET.parse(path).getroot().find("t:ResultSummary/t:Counters", ns)
    if counters is None:
        continue
    passed += int(counters.get("passed", 0))
    failed += int(counters.get("failed", 0)) + int(counters.get("error", 0)) + int(counters.get("timeout", 0)) + int(counters.get("aborted", 0))
    skipped += int(counters.get("notExecuted", 0))
print(f"tests: {passed} passed, {failed} failed, {skipped} skipped")
PY
exit "$status"
