"""Network, PIF, Bond and VLAN messages, with xapi's refusals.

- `network.create` names a fresh bridge (`xapiN`), as xapi does; `network.destroy` refuses a
  network still used by a VIF or a PIF (NETWORK_CONTAINS_VIF / NETWORK_CONTAINS_PIF).
- `Bond.create` makes a master PIF (`bondN`) on the members' host, carrying over the management
  role and IP configuration of a member; `Bond.destroy` gives them back to the primary member.
- `VLAN.create` makes the untagged PIF on the tagged PIF's host (`PIF.VLAN` = the tag);
  `pool.create_VLAN_from_PIF` does it on every host that has the same device.
- PIFs: plug/unplug (the management interface stays up), forget, reconfigure_ip(v6), scan.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import Any

from xod.sim.db import Database
from xod.sim.dispatch import Call
from xod.sim.errors import XapiFailure
from xod.sim.implicit import CreateHook
from xod.sim.registry import ParamSpec, Registry
from xod.sim.schema import new_record
from xod.sim.values import NULL_REF, new_uuid

_MIN_BOND_MEMBERS = 2
_MAX_VLAN_TAG = 4094


# ---------------------------------------------------------------------------- network


def _network_create_hook(call: Call, ref: str, record: dict[str, Any]) -> None:
    if record["bridge"]:
        return
    db = call.pool.db
    used = {network["bridge"] for network in db.tables["network"].values()}
    index = next(i for i in range(len(used) + 1) if f"xapi{i}" not in used)
    db.update("network", ref, {"bridge": f"xapi{index}"})


CREATE_HOOKS: dict[str, CreateHook] = {"network": _network_create_hook}


def network_destroy(call: Call, network: str) -> str:
    db = call.pool.db
    record = db.get("network", network)
    if record["VIFs"]:
        raise XapiFailure("NETWORK_CONTAINS_VIF", *record["VIFs"])
    if record["PIFs"]:
        raise XapiFailure("NETWORK_CONTAINS_PIF", *record["PIFs"])
    db.delete("network", network)
    return ""


def network_set_default_locking_mode(call: Call, network: str, value: str) -> str:
    call.pool.db.get("network", network)
    call.pool.db.update("network", network, {"default_locking_mode": value})
    return ""


def network_add_purpose(call: Call, network: str, value: str) -> str:
    purpose = call.pool.db.get("network", network)["purpose"]
    if value not in purpose:
        call.pool.db.update("network", network, {"purpose": [*purpose, value]})
    return ""


def network_remove_purpose(call: Call, network: str, value: str) -> str:
    purpose = call.pool.db.get("network", network)["purpose"]
    if value in purpose:
        call.pool.db.update("network", network, {"purpose": [p for p in purpose if p != value]})
    return ""


# ---------------------------------------------------------------------------- PIF records


_IP_FIELDS = ("ip_configuration_mode", "IP", "netmask", "gateway", "DNS", "management")


def _new_pif(db: Database, template: dict[str, Any], **values: Any) -> str:
    record = new_record(
        "PIF",
        uuid=new_uuid(),
        device=template["device"],
        host=template["host"],
        MAC=template["MAC"],
        MTU=template["MTU"],
        VLAN=-1,
        metrics=NULL_REF,
        physical=False,
        currently_attached=template["currently_attached"],
        other_config={},
    )
    record.update(values)
    return db.insert("PIF", record)


def _next_device(db: Database, host: str, prefix: str) -> str:
    used = {pif["device"] for pif in db.tables["PIF"].values() if pif["host"] == host}
    return next(f"{prefix}{i}" for i in range(len(used) + 1) if f"{prefix}{i}" not in used)


# ---------------------------------------------------------------------------- Bond


def bond_create(
    call: Call, network: str, members: list[str], mac: str, mode: str, properties: dict[str, str]
) -> str:
    db = call.pool.db
    db.get("network", network)
    records = [db.get("PIF", member) for member in members]
    if len(records) < _MIN_BOND_MEMBERS:
        raise XapiFailure("PIF_BOND_NEEDS_MORE_MEMBERS")
    if len({record["host"] for record in records}) > 1:
        raise XapiFailure("PIF_CANNOT_BOND_CROSS_HOST")
    for member, record in zip(members, records, strict=True):
        if record["bond_slave_of"] != NULL_REF or record["bond_master_of"]:
            raise XapiFailure("PIF_ALREADY_BONDED", member)
        if record["VLAN"] != -1:
            raise XapiFailure("PIF_IS_VLAN", member)
    primary = next(
        (m for m, r in zip(members, records, strict=True) if r["management"]), members[0]
    )
    first = db.get("PIF", primary)
    host = first["host"]
    bond = db.insert(
        "Bond",
        new_record(
            "Bond",
            uuid=new_uuid(),
            primary_slave=primary,
            mode=mode,
            properties=dict(properties),
            links_up=len(members),
        ),
    )
    ip_config = {field: first[field] for field in _IP_FIELDS}
    master = _new_pif(
        db,
        {**first, "MAC": mac or first["MAC"], "currently_attached": True},
        device=_next_device(db, host, "bond"),
        network=network,
        **ip_config,
    )
    db.update("Bond", bond, {"master": master})
    for member in members:
        db.update(
            "PIF",
            member,
            {"bond_slave_of": bond, "management": False, "ip_configuration_mode": "None", "IP": ""},
        )
    return bond


def bond_destroy(call: Call, bond: str) -> str:
    db = call.pool.db
    record = db.get("Bond", bond)
    master = db.get("PIF", record["master"])
    primary = record["primary_slave"]
    for member in list(record["slaves"]):
        changes: dict[str, Any] = {"bond_slave_of": NULL_REF}
        if member == primary:
            changes.update({field: master[field] for field in _IP_FIELDS})
        db.update("PIF", member, changes)
    db.delete("PIF", record["master"])
    db.delete("Bond", bond)
    return ""


# ---------------------------------------------------------------------------- VLAN


def vlan_create(call: Call, tagged_pif: str, tag: int, network: str) -> str:
    db = call.pool.db
    tagged = db.get("PIF", tagged_pif)
    db.get("network", network)
    if not 0 <= tag <= _MAX_VLAN_TAG:
        raise XapiFailure("VLAN_TAG_INVALID", str(tag))
    if tagged["VLAN"] != -1:
        raise XapiFailure("PIF_IS_VLAN", tagged_pif)
    for vlan in tagged["VLAN_slave_of"]:
        if db.get("VLAN", vlan)["tag"] == tag:
            raise XapiFailure("PIF_VLAN_EXISTS", db.get("VLAN", vlan)["untagged_PIF"])
    vlan = db.insert("VLAN", new_record("VLAN", uuid=new_uuid(), tagged_PIF=tagged_pif, tag=tag))
    untagged = _new_pif(db, tagged, network=network, VLAN=tag, VLAN_master_of=vlan)
    db.update("VLAN", vlan, {"untagged_PIF": untagged})
    return vlan


def vlan_destroy(call: Call, vlan: str) -> str:
    db = call.pool.db
    record = db.get("VLAN", vlan)
    untagged = db.find("PIF", record["untagged_PIF"])
    if untagged is not None:
        if untagged["management"]:
            raise XapiFailure("PIF_IS_MANAGEMENT_INTERFACE", record["untagged_PIF"])
        db.delete("PIF", record["untagged_PIF"])
    db.delete("VLAN", vlan)
    return ""


def pool_create_vlan_from_pif(call: Call, pif: str, network: str, tag: int) -> list[str]:
    db = call.pool.db
    device = db.get("PIF", pif)["device"]
    same_device = [
        ref
        for ref, record in db.tables["PIF"].items()
        if record["device"] == device and record["VLAN"] == -1
    ]
    vlans = [vlan_create(call, ref, tag, network) for ref in same_device]
    return [db.get("VLAN", vlan)["untagged_PIF"] for vlan in vlans]


# ---------------------------------------------------------------------------- PIF


def _assert_not_management(record: dict[str, Any], pif: str) -> None:
    if record["management"]:
        raise XapiFailure("PIF_IS_MANAGEMENT_INTERFACE", pif)


async def pif_plug(call: Call, pif: str) -> str:
    call.pool.db.get("PIF", pif)
    await call.work()
    call.pool.db.update("PIF", pif, {"currently_attached": True})
    return ""


async def pif_unplug(call: Call, pif: str) -> str:
    record = call.pool.db.get("PIF", pif)
    _assert_not_management(record, pif)
    if record["disallow_unplug"]:
        raise XapiFailure("PIF_DOES_NOT_ALLOW_UNPLUG", pif)
    await call.work()
    call.pool.db.update("PIF", pif, {"currently_attached": False})
    return ""


def pif_forget(call: Call, pif: str) -> str:
    db = call.pool.db
    record = db.get("PIF", pif)
    _assert_not_management(record, pif)
    if record["bond_slave_of"] != NULL_REF or record["bond_master_of"]:
        raise XapiFailure("PIF_ALREADY_BONDED", pif)
    if record["VLAN_master_of"] != NULL_REF:
        db.delete("VLAN", record["VLAN_master_of"])
    db.delete("PIF", pif)
    return ""


def _check_address(value: str, field: str, *, network: bool = False) -> None:
    try:
        if network:
            ipaddress.ip_interface(value)
        else:
            ipaddress.ip_address(value)
    except ValueError:
        raise XapiFailure("INVALID_IP_ADDRESS_SPECIFIED", field) from None


def pif_reconfigure_ip(
    call: Call, pif: str, mode: str, ip: str, netmask: str, gateway: str, dns: str
) -> str:
    db = call.pool.db
    db.get("PIF", pif)
    if mode == "Static":
        _check_address(ip, "IP")
        _check_address(f"{ip}/{netmask}", "netmask", network=True)
        if gateway:
            _check_address(gateway, "gateway")
    if mode == "None":
        ip = netmask = gateway = dns = ""
    db.update(
        "PIF",
        pif,
        {
            "ip_configuration_mode": mode,
            "IP": ip,
            "netmask": netmask,
            "gateway": gateway,
            "DNS": dns,
        },
    )
    return ""


def pif_reconfigure_ipv6(call: Call, pif: str, mode: str, ipv6: str, gateway: str, dns: str) -> str:
    db = call.pool.db
    db.get("PIF", pif)
    if mode == "Static":
        _check_address(ipv6, "IPv6", network=True)
    addresses = [ipv6] if mode == "Static" else []
    changes: dict[str, Any] = {
        "ipv6_configuration_mode": mode,
        "IPv6": addresses,
        "ipv6_gateway": gateway if mode == "Static" else "",
    }
    if dns:
        changes["DNS"] = dns
    db.update("PIF", pif, changes)
    return ""


def pif_scan(call: Call, host: str) -> str:
    """A simulated host's devices never change: the scan finds nothing new."""
    call.pool.db.get("host", host)
    return ""


def register(registry: Registry) -> None:
    network = ("self", "ref:network")
    pif = ("self", "ref:PIF")
    messages: list[tuple[str, list[ParamSpec], Callable[..., Any]]] = [
        ("network.destroy", [network], network_destroy),
        (
            "network.set_default_locking_mode",
            [network, ("value", "enum:network_default_locking_mode")],
            network_set_default_locking_mode,
        ),
        ("network.add_purpose", [network, ("value", "enum:network_purpose")], network_add_purpose),
        (
            "network.remove_purpose",
            [network, ("value", "enum:network_purpose")],
            network_remove_purpose,
        ),
        (
            "Bond.create",
            [
                ("network", "ref:network"),
                ("members", "set"),
                ("MAC", "string"),
                ("mode", "enum:bond_mode", "balance-slb"),
                ("properties", "map", {}),
            ],
            bond_create,
        ),
        ("Bond.destroy", [("self", "ref:Bond")], bond_destroy),
        (
            "VLAN.create",
            [("tagged_PIF", "ref:PIF"), ("tag", "int"), ("network", "ref:network")],
            vlan_create,
        ),
        ("VLAN.destroy", [("self", "ref:VLAN")], vlan_destroy),
        (
            "pool.create_VLAN_from_PIF",
            [("pif", "ref:PIF"), ("network", "ref:network"), ("VLAN", "int")],
            pool_create_vlan_from_pif,
        ),
        ("PIF.plug", [pif], pif_plug),
        ("PIF.unplug", [pif], pif_unplug),
        ("PIF.forget", [pif], pif_forget),
        (
            "PIF.reconfigure_ip",
            [
                pif,
                ("mode", "enum:ip_configuration_mode"),
                ("IP", "string"),
                ("netmask", "string"),
                ("gateway", "string"),
                ("DNS", "string"),
            ],
            pif_reconfigure_ip,
        ),
        (
            "PIF.reconfigure_ipv6",
            [
                pif,
                ("mode", "enum:ipv6_configuration_mode"),
                ("iPv6", "string"),
                ("gateway", "string"),
                ("DNS", "string"),
            ],
            pif_reconfigure_ipv6,
        ),
        ("PIF.scan", [("host", "ref:host")], pif_scan),
    ]
    for name, params, handler in messages:
        registry.add(name, params, handler, async_capable=True)
