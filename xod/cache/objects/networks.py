"""Transforms of the network classes: network, PIF, VIF."""

from __future__ import annotations

from sys import intern
from typing import TYPE_CHECKING, Any

from xod.cache.objects.values import EMPTY_MAP, XoObject, as_list, as_map, to_int, to_number
from xod.xapi.codec import NULL_REF

if TYPE_CHECKING:
    from xod.cache.objects.pool import PoolObjects


def network_object(pool: PoolObjects, ref: str, r: dict[str, Any], object_id: str) -> XoObject:
    other = as_map(r.get("other_config"))
    purpose = r.get("purpose") or ()
    pifs = pool.links(r.get("PIFs"))
    objects = pool.objects
    # PIFs are transformed before networks (classes.py): a bond's master PIF is already there.
    bonded = any(objects.get(pif, EMPTY_MAP).get("isBondMaster") for pif in pifs)
    obj: XoObject = {
        "type": "network",
        "automatic": other.get("automatic") == "true",
        "bridge": r.get("bridge", ""),
        "current_operations": as_map(r.get("current_operations")),
        "defaultIsLocked": r.get("default_locking_mode") == "disabled",
        "MTU": to_int(r.get("MTU", 1500)),
        "name_description": r.get("name_description", ""),
        "name_label": r.get("name_label", ""),
        "other_config": other,
        "tags": as_list(r.get("tags")),
        "PIFs": pifs,
        "VIFs": pool.links(r.get("VIFs")),
        "nbd": "nbd" in purpose,
        "insecureNbd": "insecure_nbd" in purpose,
        "isBonded": bonded,
    }
    pool.add_common_fields(obj, ref, object_id, r)
    return obj


def pif_object(pool: PoolObjects, ref: str, r: dict[str, Any], object_id: str) -> XoObject:
    obj: XoObject = {
        "type": "PIF",
        "attached": bool(r.get("currently_attached")),
        "isBondMaster": bool(r.get("bond_master_of")),
        "isBondSlave": r.get("bond_slave_of", NULL_REF) != NULL_REF,
        "device": intern(r.get("device", "")),
        "dns": r.get("DNS", ""),
        "disallowUnplug": bool(r.get("disallow_unplug")),
        "gateway": r.get("gateway", ""),
        "ip": r.get("IP", ""),
        "ipv6": as_list(r.get("IPv6")),
        "mac": r.get("MAC", ""),
        "management": bool(r.get("management")),
        "carrier": False,
        "mode": intern(r.get("ip_configuration_mode", "None")),
        "ipv6Mode": intern(r.get("ipv6_configuration_mode", "None")),
        "mtu": to_int(r.get("MTU", 1500)),
        "netmask": r.get("netmask", ""),
        "physical": bool(r.get("physical")),
        "primaryAddressType": intern(r.get("primary_address_type", "IPv4")),
        "vlan": to_int(r.get("VLAN", -1)),
        "$host": pool.link(r.get("host")),
        "$network": pool.link(r.get("network")),
    }
    pool.add_common_fields(obj, ref, object_id, r)
    return obj


def vif_object(pool: PoolObjects, ref: str, r: dict[str, Any], object_id: str) -> XoObject:
    other = as_map(r.get("other_config"))
    tx = other.get("ethtool-tx")
    rate_limit = None
    if r.get("qos_algorithm_type") == "ratelimit":
        rate_limit = to_number(as_map(r.get("qos_algorithm_params")).get("kbps"))
    obj: XoObject = {
        "type": "VIF",
        "allowedIpv4Addresses": as_list(r.get("ipv4_allowed")),
        "allowedIpv6Addresses": as_list(r.get("ipv6_allowed")),
        "attached": bool(r.get("currently_attached")),
        "device": intern(str(r.get("device", ""))),
        "lockingMode": intern(r.get("locking_mode", "network_default")),
        "MAC": r.get("MAC", ""),
        "MTU": to_int(r.get("MTU", 1500)),
        "other_config": other,
        "txChecksumming": not (tx == "false" or tx == "off"),
        "$network": pool.link(r.get("network")),
        "$VM": pool.link(r.get("VM")),
    }
    pool.add_common_fields(obj, ref, object_id, r)
    # Last, and only when set (as XO): the common key order stays shared (sharing.compact).
    if rate_limit is not None:
        obj["rateLimit"] = rate_limit
    return obj
