"""Several xod instances serving the same pools through NATS JetStream (issue #17).

`nats.py`: the process's one NATS connection and JetStream context. The rest (ownership leases,
the change log, replicas, forwarded commands) builds on it; `[cluster] nats = []` (the default)
leaves all of it off and xod runs alone, exactly as without this package.
"""
