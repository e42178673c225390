"""xod-cli: the companion command-line client (xo-jsonrpc §2.4, §3.2, §3.4, §3.5)."""
