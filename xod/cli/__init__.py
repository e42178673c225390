"""xod-cli: the companion command-line client, working the way xo-cli does."""
