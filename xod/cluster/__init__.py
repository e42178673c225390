"""Several xod instances serving the same pools through NATS JetStream (issue #17;
docs/cluster.md).

`nats.py`: the process's NATS connection. `ownership.py`: one owner per pool connection, by
lease. `changelog.py`: the owner's change batches, in order, in one stream. `replica.py`: every
instance's store following that stream. `pools.py`: the pool manager syncing only owned pools.
`forwarding.py`: actions run on the pool's owner. `node.py`: the daemon's wiring, /readyz and
/metrics. `shared_state.py`: users, tokens and servers in a key-value bucket.
`[cluster] nats = []` (the default) leaves all of it off: xod runs alone, without NATS.
"""
