"""Checks deploy/compose.yaml for what an operator relies on: every service
restarts by itself and has a health check (the collector's image has no
command to run one: its health_check extension is probed from outside),
secrets come from files, and Grafana has no anonymous access."""

import sys

import yaml

NO_HEALTHCHECK_COMMAND = {"otel-collector"}

with open(sys.argv[1], encoding="utf-8") as f:
    compose = yaml.safe_load(f)
problems = []
for name, service in compose["services"].items():
    if service.get("restart") not in ("always", "unless-stopped", "on-failure"):
        problems.append(f"{name}: no restart policy")
    if "healthcheck" not in service and name not in NO_HEALTHCHECK_COMMAND:
        problems.append(f"{name}: no healthcheck")
    for key, value in (service.get("environment") or {}).items():
        if "PASSWORD" in key and not key.endswith("FILE"):
            problems.append(f"{name}: {key} is in the environment, not a secret file")
        if key.startswith("GF_AUTH_ANONYMOUS_ENABLED") and str(value).lower() != "false":
            problems.append(f"{name}: anonymous Grafana")
for name, secret in (compose.get("secrets") or {}).items():
    if "file" not in secret:
        problems.append(f"secret {name}: not from a file")
if problems:
    print("\n".join(problems), file=sys.stderr)
    sys.exit(1)
print(f"{len(compose['services'])} services: restart policies, health checks, secrets from files")
