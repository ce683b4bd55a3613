"""Update plans, preflight checks, the job state machine and its journal."""
