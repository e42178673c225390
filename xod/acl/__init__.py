"""XO's object permission model, pure: the roles (`roles.py`) and the inheritance resolver
(`resolver.py`, a port of xo-acl-resolver). Imports nothing else of xod, so every layer may use
it: the API checks calls with it, the server filters what each connection sees with it."""
