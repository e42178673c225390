"""The REST API `/rest/v0` (Xen Orchestra compatible), on the same app as `/api/`."""
