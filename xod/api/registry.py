"""The method registry: one declaration per method, from which validation, discovery
(`system.*`) and the OpenRPC document are generated.

A method's description and XO-dialect `params` live in `schemas/<namespace>.json`; its
permission and handler are declared next to the code with `Registry.method`. Pure: no I/O
beyond reading the schema files once.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xod.api.schema import SCHEMAS_DIR, ParamsValidator, load_namespace

# Permission levels of a method. ANONYMOUS is XO's `permission: null`; SIGNED_IN is XO's
# `undefined` (any signed-in user); the others compare with the user's global level.
ANONYMOUS = "anonymous"
SIGNED_IN = "signed-in"
LEVELS = ("read", "write", "admin")

Handler = Callable[..., Awaitable[Any]]


@dataclass(slots=True)
class Method:
    name: str
    handler: Handler
    permission: str
    description: str | None = None
    params: dict[str, Any] | None = None  # XO dialect; None = not validated (session.signIn)
    validator: ParamsValidator | None = field(default=None, repr=False)
    # An action (xod/api/commands.py): it accepts `_async`, which discovery says (`async`).
    action: bool = False

    @property
    def namespace(self) -> str:
        return self.name.partition(".")[0]

    def info(self) -> dict[str, Any]:
        """The `system.getMethodsInfo` entry: description/permission omitted when undefined."""
        entry: dict[str, Any] = {}
        if self.description is not None:
            entry["description"] = self.description
        entry["params"] = self.params or {}
        if self.permission == ANONYMOUS:
            entry["permission"] = None
        elif self.permission != SIGNED_IN:
            entry["permission"] = self.permission
        if self.action:
            entry["async"] = True
        return entry


class Registry:
    def __init__(self, schemas_dir: Path = SCHEMAS_DIR) -> None:
        self.schemas_dir = schemas_dir
        self._methods: dict[str, Method] = {}
        self._namespaces: dict[str, dict[str, Any]] = {}
        # Discovery documents, built on first use: methods are all added at startup, and
        # anonymous clients may ask for them in a loop.
        self._methods_info: dict[str, Any] | None = None
        self._openrpc: dict[str, dict[str, Any]] = {}

    def __contains__(self, name: object) -> bool:
        return name in self._methods

    def __len__(self) -> int:
        return len(self._methods)

    def get(self, name: str) -> Method | None:
        return self._methods.get(name)

    def names(self) -> list[str]:
        return sorted(self._methods)

    def methods(self) -> list[Method]:
        return [self._methods[name] for name in self.names()]

    def declarations(self, namespace: str) -> dict[str, Any]:
        if namespace not in self._namespaces:
            self._namespaces[namespace] = load_namespace(namespace, self.schemas_dir)
        return self._namespaces[namespace]

    def add(self, name: str, handler: Handler, permission: str, *, action: bool = False) -> Method:
        if name in self._methods:
            raise ValueError(f"method {name} is declared twice")
        if permission not in (ANONYMOUS, SIGNED_IN, *LEVELS):
            raise ValueError(f"{name}: invalid permission {permission!r}")
        namespace, _, short = name.partition(".")
        declaration = self.declarations(namespace).get(short)
        if declaration is None:
            raise ValueError(f"{name} has no declaration in {namespace}.json")
        params = declaration.get("params")
        method = Method(
            name=name,
            handler=handler,
            permission=permission,
            description=declaration.get("description"),
            params=params,
            validator=None if params is None else ParamsValidator(params),
            action=action,
        )
        self._methods[name] = method
        self._methods_info = None
        self._openrpc.clear()
        return method

    def method(self, name: str, *, permission: str) -> Callable[[Handler], Handler]:
        """Decorator: `@registry.method("user.create", permission="admin")`."""

        def register(handler: Handler) -> Handler:
            self.add(name, handler, permission)
            return handler

        return register

    def undeclared(self) -> list[str]:
        """Names declared in a loaded schema file that have no handler (a consistency check)."""
        return sorted(
            f"{ns}.{short}"
            for ns, declarations in self._namespaces.items()
            for short in declarations
            if f"{ns}.{short}" not in self._methods
        )

    # -- discovery -------------------------------------------------------------------------

    def methods_info(self) -> dict[str, Any]:
        """`system.getMethodsInfo`'s answer (shared: callers must not modify it)."""
        if self._methods_info is None:
            self._methods_info = {method.name: method.info() for method in self.methods()}
        return self._methods_info

    def openrpc(self, version: str) -> dict[str, Any]:
        """An OpenRPC 1.2 document of every method (shared: callers must not modify it)."""
        document = self._openrpc.get(version)
        if document is None:
            document = self._openrpc[version] = self._build_openrpc(version)
        return document

    def _build_openrpc(self, version: str) -> dict[str, Any]:
        methods = []
        for method in self.methods():
            params = []
            schema = method.validator.schema if method.validator else {"properties": {}}
            required = set(schema.get("required", ()))
            for name, prop in schema["properties"].items():
                params.append({"name": name, "required": name in required, "schema": prop})
            if method.params is None:
                params.append(
                    {"name": "credentials", "required": False, "schema": {"type": "object"}}
                )
            entry: dict[str, Any] = {
                "name": method.name,
                "paramStructure": "by-name",
                "params": params,
                "result": {"name": "result", "schema": {}},
                "x-permission": None if method.permission == ANONYMOUS else method.permission,
            }
            if method.description:
                entry["summary"] = method.description
            methods.append(entry)
        return {
            "openrpc": "1.2.6",
            "info": {"title": "xod JSON-RPC API (Xen Orchestra compatible)", "version": version},
            "methods": methods,
        }
