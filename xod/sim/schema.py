"""The simulated datamodel: classes, fields (type, qualifier, default) and reverse references.

The field lists are generated from xapi's `doc/data/xenapi.json`, kept here verbatim and parsed
once at import so that the table stays easy to compare with its source. Records are plain dicts
of wire-ready values; a class's `defaults` dict is the template every new record is copied from
(containers in it are shared: the database never mutates a stored container in place, it
replaces it — copy-on-write).

Why this module is long: most of it is the table itself (about 300 lines of fields and enums
of the simulated classes, one class per paragraph); the parser next to it is short, and
splitting the table would only make it harder to compare with its source.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from xod.sim.values import NULL_REF, DateTime

_FIELDS_SPEC = """\
session: uuid: string RO; this_host: host ref RO; this_user: user ref RO;
    last_active: datetime RO; pool: bool RO; other_config: (string -> string) map RW ={};
    is_local_superuser: bool RO =false; subject: subject ref RO =OpaqueRef:NULL;
    validation_time: datetime RO =19700101T00:00:00Z; auth_user_sid: string RO ="";
    auth_user_name: string RO =""; rbac_permissions: string set RC ={}; tasks: task ref set RO;
    parent: session ref RC =OpaqueRef:NULL; originator: string RO ="";
    client_certificate: bool RO =false
pool: uuid: string RO; name_label: string RW; name_description: string RW; master: host ref RO;
    default_SR: SR ref RW; suspend_image_SR: SR ref RW; crash_dump_SR: SR ref RW;
    other_config: (string -> string) map RW; ha_enabled: bool RO =false;
    ha_configuration: (string -> string) map RO ={}; ha_statefiles: string set RO ={};
    ha_host_failures_to_tolerate: int RO =0; ha_plan_exists_for: int RO =0;
    ha_allow_overcommit: bool RW =false; ha_overcommitted: bool RO =false;
    blobs: (string -> blob ref) map RO ={}; tags: string set RW ={};
    gui_config: (string -> string) map RW ={};
    health_check_config: (string -> string) map RW ={}; wlb_url: string RO ="";
    wlb_username: string RO =""; wlb_enabled: bool RW =false;
    wlb_verify_cert (dep): bool RW =false; redo_log_enabled: bool RO =false;
    redo_log_vdi: VDI ref RO =OpaqueRef:NULL; vswitch_controller (dep): string RO ="";
    restrictions: (string -> string) map RO ={}; metadata_VDIs: VDI ref set RO;
    ha_cluster_stack: string RO ="";
    allowed_operations: enum:pool_allowed_operations set RO ={};
    current_operations: (string -> enum:pool_allowed_operations) map RO ={};
    guest_agent_config: (string -> string) map RO ={}; cpu_info: (string -> string) map RO ={};
    policy_no_vendor_device: bool RW =false; live_patching_disabled: bool RW =false;
    igmp_snooping_enabled: bool RO =false; uefi_certificates: string RC ="";
    custom_uefi_certificates (proto): string RC =""; is_psr_pending: bool RW =false;
    tls_verification_enabled: bool RO =false; repositories: Repository ref set RO ={};
    client_certificate_auth_enabled: bool RO =false;
    client_certificate_auth_name: string RO =""; repository_proxy_url: string RO ="";
    repository_proxy_username: string RO ="";
    repository_proxy_password: secret ref RO =OpaqueRef:NULL;
    migration_compression (proto): bool RW =false; coordinator_bias: bool RW =true;
    local_auth_max_threads (proto): int RC =8; ext_auth_max_threads (proto): int RC =1;
    telemetry_uuid (proto): secret ref RO =OpaqueRef:NULL;
    telemetry_frequency (proto): enum:telemetry_frequency RO =weekly;
    telemetry_next_collection (proto): datetime RO =19700101T00:00:00Z;
    last_update_sync (proto): datetime RO =19700101T00:00:00Z;
    update_sync_frequency (proto): enum:update_sync_frequency RO =weekly;
    update_sync_day (proto): int RO =0; update_sync_enabled (proto): bool RO =false
host: uuid: string RO; name_label: string RW =""; name_description: string RW ="";
    memory_overhead: int RO =0; allowed_operations: enum:host_allowed_operations set RO ={};
    current_operations: (string -> enum:host_allowed_operations) map RO ={};
    API_version_major: int RO; API_version_minor: int RO; API_version_vendor: string RO;
    API_version_vendor_implementation: (string -> string) map RO; enabled: bool RO;
    software_version: (string -> string) map RC; other_config: (string -> string) map RW;
    capabilities: string set RC; cpu_configuration: (string -> string) map RO;
    sched_policy: string RO; supported_bootloaders: string set RO; resident_VMs: VM ref set RO;
    logging: (string -> string) map RW; PIFs: PIF ref set RO; suspend_image_sr: SR ref RW;
    crash_dump_sr: SR ref RW; crashdumps: host_crashdump ref set RO;
    patches (dep): host_patch ref set RO; updates: pool_update ref set RO;
    PBDs: PBD ref set RO; host_CPUs: host_cpu ref set RO;
    cpu_info: (string -> string) map RO ={}; hostname: string RW; address: string RW;
    metrics: host_metrics ref RO; license_params: (string -> string) map RO;
    ha_statefiles: string set RO ={}; ha_network_peers: string set RO ={};
    blobs: (string -> blob ref) map RO ={}; tags: string set RW ={};
    external_auth_type: string RO =""; external_auth_service_name: string RO ="";
    external_auth_configuration: (string -> string) map RO ={}; edition: string RO ="";
    license_server: (string -> string) map RW ={"address" -> "localhost", "port" -> "27000"};
    bios_strings: (string -> string) map RO ={}; power_on_mode: string RO ="";
    power_on_config: (string -> string) map RO ={}; local_cache_sr: SR ref RC =OpaqueRef:NULL;
    chipset_info: (string -> string) map RO ={}; PCIs: PCI ref set RO; PGPUs: PGPU ref set RO;
    PUSBs: PUSB ref set RO; ssl_legacy (dep): bool RC =true;
    guest_VCPUs_params: (string -> string) map RW ={}; display: enum:host_display RW =enabled;
    virtual_hardware_platform_versions: int set RO ={0};
    control_domain: VM ref RO =OpaqueRef:NULL;
    updates_requiring_reboot: pool_update ref set RO; features: Feature ref set RO;
    iscsi_iqn: string RC =""; multipathing: bool RC =false;
    uefi_certificates (dep): string RC =""; certificates: Certificate ref set RO;
    editions: string set RO ={}; pending_guidances: enum:update_guidances set RO ={};
    tls_verification_enabled: bool RO =false;
    last_software_update (proto): datetime RO =19700101T00:00:00Z;
    https_only (proto): bool RO =false;
    latest_synced_updates_applied (proto): enum:latest_synced_updates_applied_state RO =unknown;
    numa_affinity_policy (proto): enum:host_numa_affinity_policy RO =default_policy;
    pending_guidances_recommended (proto): enum:update_guidances set RO ={};
    pending_guidances_full (proto): enum:update_guidances set RO ={};
    last_update_hash (proto): string RO =""
host_metrics: uuid: string RO; memory_total: int RO; memory_free (rm): int RO =0;
    live: bool RO; last_updated: datetime RO; other_config: (string -> string) map RW ={}
VM: uuid: string RO; allowed_operations: enum:vm_operations set RO ={};
    current_operations: (string -> enum:vm_operations) map RO ={}; name_label: string RW ="";
    name_description: string RW =""; power_state: enum:vm_power_state RC =Halted;
    user_version: int RW; is_a_template: bool RW; is_default_template: bool RO =false;
    suspend_VDI: VDI ref RC =OpaqueRef:NULL; resident_on: host ref RO;
    scheduled_to_be_resident_on: host ref RO =OpaqueRef:NULL; affinity: host ref RW;
    memory_overhead: int RO =0; memory_target (dep): int RC =0; memory_static_max: int RC;
    memory_dynamic_max: int RC; memory_dynamic_min: int RC; memory_static_min: int RC;
    VCPUs_params: (string -> string) map RW; VCPUs_max: int RC; VCPUs_at_startup: int RC;
    actions_after_softreboot (proto): enum:on_softreboot_behavior RW =soft_reboot;
    actions_after_shutdown: enum:on_normal_exit RW;
    actions_after_reboot: enum:on_normal_exit RW;
    actions_after_crash: enum:on_crash_behaviour RC; consoles: console ref set RO;
    VIFs: VIF ref set RO; VBDs: VBD ref set RO; VUSBs: VUSB ref set RO;
    crash_dumps: crashdump ref set RO; VTPMs: VTPM ref set RO; PV_bootloader: string RW;
    PV_kernel: string RW; PV_ramdisk: string RW; PV_args: string RW;
    PV_bootloader_args: string RW; PV_legacy_args: string RW; HVM_boot_policy (dep): string RC;
    HVM_boot_params: (string -> string) map RW; HVM_shadow_multiplier: float RC =1.;
    platform: (string -> string) map RW; PCI_bus (dep): string RW;
    other_config: (string -> string) map RW; domid: int RO; domarch: string RO;
    last_boot_CPU_flags: (string -> string) map RC ={}; is_control_domain: bool RO;
    metrics: VM_metrics ref RO; guest_metrics: VM_guest_metrics ref RO;
    last_booted_record: string RC =""; recommendations: string RW;
    xenstore_data: (string -> string) map RW ={}; ha_always_run (dep): bool RC =false;
    ha_restart_priority: string RC =""; is_a_snapshot: bool RO =false;
    snapshot_of: VM ref RO =OpaqueRef:NULL; snapshots: VM ref set RO;
    snapshot_time: datetime RO =19700101T00:00:00Z; transportable_snapshot_id: string RO ="";
    blobs: (string -> blob ref) map RO ={}; tags: string set RW ={};
    blocked_operations: (enum:vm_operations -> string) map RW ={};
    snapshot_info: (string -> string) map RO ={}; snapshot_metadata: string RO ="";
    parent: VM ref RO =OpaqueRef:NULL; children: VM ref set RO;
    bios_strings: (string -> string) map RO ={};
    protection_policy (dep): VMPP ref RC =OpaqueRef:NULL;
    is_snapshot_from_vmpp (rm): bool RC =false; snapshot_schedule: VMSS ref RC =OpaqueRef:NULL;
    is_vmss_snapshot: bool RC =false; appliance: VM_appliance ref RC =OpaqueRef:NULL;
    start_delay: int RC =0; shutdown_delay: int RC =0; order: int RC =0;
    VGPUs: VGPU ref set RO; attached_PCIs: PCI ref set RO;
    suspend_SR: SR ref RW =OpaqueRef:NULL; version: int RC =0; generation_id: string RC ="0:0";
    hardware_platform_version: int RW =0; has_vendor_device: bool RC =false;
    requires_reboot: bool RO =false; reference_label: string RC ="";
    domain_type: enum:domain_type RC =unspecified; NVRAM: (string -> string) map RC ={};
    pending_guidances: enum:update_guidances set RO ={};
    pending_guidances_recommended (proto): enum:update_guidances set RO ={};
    pending_guidances_full (proto): enum:update_guidances set RO ={}
VM_metrics: uuid: string RO; memory_actual: int RO; VCPUs_number: int RO;
    VCPUs_utilisation (rm): (int -> float) map RO ={}; VCPUs_CPU: (int -> int) map RO;
    VCPUs_params: (string -> string) map RO; VCPUs_flags: (int -> string set) map RO;
    state: string set RO; start_time: datetime RO; install_time: datetime RO;
    last_updated: datetime RO; other_config: (string -> string) map RW ={};
    hvm: bool RO =false; nested_virt: bool RO =false; nomigrate: bool RO =false;
    current_domain_type: enum:domain_type RO =unspecified
VM_guest_metrics: uuid: string RO; os_version: (string -> string) map RO;
    PV_drivers_version: (string -> string) map RO; PV_drivers_up_to_date (dep): bool RO;
    memory (rm): (string -> string) map RO ={}; disks (rm): (string -> string) map RO ={};
    networks: (string -> string) map RO; other: (string -> string) map RO;
    last_updated: datetime RO; other_config: (string -> string) map RW ={};
    live: bool RO =false; can_use_hotplug_vbd: enum:tristate_type RO =unspecified;
    can_use_hotplug_vif: enum:tristate_type RO =unspecified;
    PV_drivers_detected: bool RO =false
SR: uuid: string RO; name_label: string RC =""; name_description: string RC ="";
    allowed_operations: enum:storage_operations set RO ={};
    current_operations: (string -> enum:storage_operations) map RO ={}; VDIs: VDI ref set RO;
    PBDs: PBD ref set RO; virtual_allocation: int RO; physical_utilisation: int RO;
    physical_size: int RC; type: string RC; content_type: string RC; shared: bool RO;
    other_config: (string -> string) map RW; tags: string set RW ={};
    sm_config: (string -> string) map RW ={}; blobs: (string -> blob ref) map RO ={};
    local_cache_enabled: bool RO =false; introduced_by: DR_task ref RO =OpaqueRef:NULL;
    clustered: bool RO =false; is_tools_sr: bool RO =false
VDI: uuid: string RO; name_label: string RC =""; name_description: string RC ="";
    allowed_operations: enum:vdi_operations set RO ={};
    current_operations: (string -> enum:vdi_operations) map RO ={}; SR: SR ref RC;
    VBDs: VBD ref set RO; crash_dumps: crashdump ref set RO; virtual_size: int RC;
    physical_utilisation: int RO; type: enum:vdi_type RC; sharable: bool RC;
    read_only: bool RC; other_config: (string -> string) map RW; storage_lock: bool RO;
    location: string RO =""; managed: bool RO =true; missing: bool RO; parent (dep): VDI ref RO;
    xenstore_data: (string -> string) map RW ={}; sm_config: (string -> string) map RW ={};
    is_a_snapshot: bool RO =false; snapshot_of: VDI ref RO =OpaqueRef:NULL;
    snapshots: VDI ref set RO; snapshot_time: datetime RO =19700101T00:00:00Z;
    tags: string set RW ={}; allow_caching: bool RO =false; on_boot: enum:on_boot RO =persist;
    metadata_of_pool: pool ref RO =OpaqueRef:NULL; metadata_latest: bool RO =false;
    is_tools_iso: bool RO =false; cbt_enabled: bool RO =false
VBD: uuid: string RO; allowed_operations: enum:vbd_operations set RO ={};
    current_operations: (string -> enum:vbd_operations) map RO ={}; VM: VM ref RC;
    VDI: VDI ref RC; device: string RC =""; userdevice: string RW; bootable: bool RW;
    mode: enum:vbd_mode RC; type: enum:vbd_type RW; unpluggable: bool RW =true;
    storage_lock: bool RO; empty: bool RC; other_config: (string -> string) map RW;
    currently_attached: bool RC =false; status_code: int RO; status_detail: string RO;
    runtime_properties: (string -> string) map RO; qos_algorithm_type: string RW;
    qos_algorithm_params: (string -> string) map RW; qos_supported_algorithms: string set RO;
    metrics (rm): VBD_metrics ref RO =OpaqueRef:NULL
PBD: uuid: string RO; host: host ref RC; SR: SR ref RC;
    device_config: (string -> string) map RC; currently_attached: bool RO;
    other_config: (string -> string) map RW ={}
VIF: uuid: string RO; allowed_operations: enum:vif_operations set RO ={};
    current_operations: (string -> enum:vif_operations) map RO ={}; device: string RC;
    network: network ref RC; VM: VM ref RC; MAC: string RC; MTU: int RC;
    other_config: (string -> string) map RW; currently_attached: bool RC =false;
    status_code: int RO; status_detail: string RO;
    runtime_properties: (string -> string) map RO; qos_algorithm_type: string RW;
    qos_algorithm_params: (string -> string) map RW; qos_supported_algorithms: string set RO;
    metrics (rm): VIF_metrics ref RO =OpaqueRef:NULL; MAC_autogenerated: bool RO =false;
    locking_mode: enum:vif_locking_mode RC =network_default; ipv4_allowed: string set RC ={};
    ipv6_allowed: string set RC ={};
    ipv4_configuration_mode: enum:vif_ipv4_configuration_mode RO =None;
    ipv4_addresses: string set RO ={}; ipv4_gateway: string RO ="";
    ipv6_configuration_mode: enum:vif_ipv6_configuration_mode RO =None;
    ipv6_addresses: string set RO ={}; ipv6_gateway: string RO =""
network: uuid: string RO; name_label: string RW =""; name_description: string RW ="";
    allowed_operations: enum:network_operations set RO ={};
    current_operations: (string -> enum:network_operations) map RO ={}; VIFs: VIF ref set RO;
    PIFs: PIF ref set RO; MTU: int RW =1500; other_config: (string -> string) map RW;
    bridge: string RC =""; managed: bool RC =true; blobs: (string -> blob ref) map RO ={};
    tags: string set RW ={};
    default_locking_mode: enum:network_default_locking_mode RO =unlocked;
    assigned_ips: (VIF ref -> string) map RO ={}; purpose: enum:network_purpose set RO ={}
PIF: uuid: string RO; device: string RC; network: network ref RC; host: host ref RC;
    MAC: string RC; MTU: int RC; VLAN: int RC; metrics: PIF_metrics ref RO;
    physical: bool RO =false; currently_attached: bool RO =true;
    ip_configuration_mode: enum:ip_configuration_mode RO =None; IP: string RO ="";
    netmask: string RO =""; gateway: string RO =""; DNS: string RO ="";
    bond_slave_of: Bond ref RO =OpaqueRef:NULL; bond_master_of: Bond ref set RO;
    VLAN_master_of: VLAN ref RO =OpaqueRef:NULL; VLAN_slave_of: VLAN ref set RO;
    management: bool RO =false; other_config: (string -> string) map RW ={};
    disallow_unplug: bool RO =false; tunnel_access_PIF_of: tunnel ref set RO;
    tunnel_transport_PIF_of: tunnel ref set RO;
    ipv6_configuration_mode: enum:ipv6_configuration_mode RO =None; IPv6: string set RO ={};
    ipv6_gateway: string RO =""; primary_address_type: enum:primary_address_type RO =IPv4;
    managed: bool RC =true; properties: (string -> string) map RO ={};
    capabilities: string set RO ={}; igmp_snooping_status: enum:pif_igmp_status RO =unknown;
    sriov_physical_PIF_of: network_sriov ref set RO;
    sriov_logical_PIF_of: network_sriov ref set RO; PCI: PCI ref RO =OpaqueRef:NULL
task: uuid: string RO; name_label: string RO =""; name_description: string RO ="";
    allowed_operations: enum:task_allowed_operations set RO ={};
    current_operations: (string -> enum:task_allowed_operations) map RO ={};
    created: datetime RO; finished: datetime RO; status: enum:task_status_type RO;
    resident_on: host ref RO; progress: float RO; type: string RO; result: string RO;
    error_info: string set RO; other_config: (string -> string) map RW ={};
    subtask_of: task ref RO =OpaqueRef:NULL; subtasks: task ref set RO;
    backtrace: string RO ="()"
message: uuid: string RO; name: string RO; priority: int RO; cls: enum:cls RO;
    obj_uuid: string RO; timestamp: datetime RO; body: string RO
console: uuid: string RO; protocol: enum:console_protocol RO; location: string RO;
    VM: VM ref RO; other_config: (string -> string) map RW
Bond: uuid: string RO; master: PIF ref RO; slaves: PIF ref set RO;
    other_config: (string -> string) map RW ={}; primary_slave: PIF ref RO =OpaqueRef:NULL;
    mode: enum:bond_mode RO =balance-slb; properties: (string -> string) map RO ={};
    links_up: int RO =0; auto_update_mac: bool RO =true
VLAN: uuid: string RO; tagged_PIF: PIF ref RO; untagged_PIF: PIF ref RO; tag: int RO;
    other_config: (string -> string) map RW ={}
Certificate: uuid: string RO; name: string RO =""; type: enum:certificate_type RO =host;
    host: host ref RO =OpaqueRef:NULL; not_before: datetime RO; not_after: datetime RO;
    fingerprint: string RO; fingerprint_sha256: string RO; fingerprint_sha1: string RO
"""

_ENUMS_SPEC = """\
bond_mode: balance-slb, active-backup, lacp
cls: VM, Host, SR, Pool, VMPP, VMSS, PVS_proxy, VDI, Certificate
certificate_type: ca, host, host_internal
console_protocol: vt100, rfb, rdp
domain_type: hvm, pv, pv_in_pvh, pvh, unspecified
host_allowed_operations: provision, evacuate, shutdown, reboot, power_on, vm_start, vm_resume,
    vm_migrate, apply_updates, enable
host_display: enabled, disable_on_reboot, disabled, enable_on_reboot
host_numa_affinity_policy: any, best_effort, default_policy
host_sched_gran: core, cpu, socket
ip_configuration_mode: None, DHCP, Static
ipv6_configuration_mode: None, DHCP, Static, Autoconf
latest_synced_updates_applied_state: yes, no, unknown
network_default_locking_mode: unlocked, disabled
network_operations: attaching
network_purpose: nbd, insecure_nbd
on_boot: reset, persist
on_crash_behaviour: destroy, coredump_and_destroy, restart, coredump_and_restart, preserve,
    rename_restart
on_normal_exit: destroy, restart
on_softreboot_behavior: soft_reboot, destroy, restart, preserve
pif_igmp_status: enabled, disabled, unknown
pool_allowed_operations: ha_enable, ha_disable, cluster_create, designate_new_master,
    configure_repositories, sync_updates, get_updates, apply_updates, tls_verification_enable,
    cert_refresh, exchange_certificates_on_join, exchange_ca_certificates_on_join,
    copy_primary_host_certs, eject
primary_address_type: IPv4, IPv6
storage_operations: scan, destroy, forget, plug, unplug, update, vdi_create, vdi_introduce,
    vdi_destroy, vdi_resize, vdi_clone, vdi_snapshot, vdi_mirror, vdi_enable_cbt,
    vdi_disable_cbt, vdi_data_destroy, vdi_list_changed_blocks, vdi_set_on_boot, pbd_create,
    pbd_destroy
task_allowed_operations: cancel, destroy
task_status_type: pending, success, failure, cancelling, cancelled
telemetry_frequency: daily, weekly, monthly
tristate_type: yes, no, unspecified
update_guidances: reboot_host, reboot_host_on_livepatch_failure,
    reboot_host_on_kernel_livepatch_failure, reboot_host_on_xen_livepatch_failure,
    restart_toolstack, restart_device_model, restart_vm
update_sync_frequency: daily, weekly
vbd_mode: RO, RW
vbd_operations: attach, eject, insert, plug, unplug, unplug_force, pause, unpause
vbd_type: CD, Disk, Floppy
vdi_operations: clone, copy, resize, resize_online, snapshot, mirror, destroy, forget, update,
    force_unlock, generate_config, enable_cbt, disable_cbt, data_destroy, list_changed_blocks,
    set_on_boot, blocked
vdi_type: system, user, ephemeral, suspend, crashdump, ha_statefile, metadata, redo_log, rrd,
    pvs_cache, cbt_metadata
vif_ipv4_configuration_mode: None, Static
vif_ipv6_configuration_mode: None, Static
vif_locking_mode: network_default, locked, unlocked, disabled
vif_operations: attach, plug, unplug
vm_operations: snapshot, clone, copy, create_template, revert, checkpoint,
    snapshot_with_quiesce, provision, start, start_on, pause, unpause, clean_shutdown,
    clean_reboot, hard_shutdown, power_state_reset, hard_reboot, suspend, csvm, resume,
    resume_on, pool_migrate, migrate_send, get_boot_record, send_sysrq, send_trigger,
    query_services, shutdown, call_plugin, changing_memory_live, awaiting_memory_live,
    changing_dynamic_range, changing_static_range, changing_memory_limits,
    changing_shadow_memory, changing_shadow_memory_live, changing_VCPUs, changing_VCPUs_live,
    changing_NVRAM, assert_operation_valid, data_source_op, update_allowed_operations,
    make_into_template, import, export, metadata_export, reverting, destroy, create_vtpm
vm_power_state: Halted, Paused, Running, Suspended
"""

# Reverse references (`datamodel.ml all_relations`) among the simulated classes:
# (class, ref field) on the "one" side -> (class, ref-set field) on the "many" side.
RELATIONS: dict[tuple[str, str], tuple[str, str]] = {
    ("VBD", "VM"): ("VM", "VBDs"),
    ("VBD", "VDI"): ("VDI", "VBDs"),
    ("VIF", "VM"): ("VM", "VIFs"),
    ("VIF", "network"): ("network", "VIFs"),
    ("VDI", "SR"): ("SR", "VDIs"),
    ("PBD", "SR"): ("SR", "PBDs"),
    ("PBD", "host"): ("host", "PBDs"),
    ("PIF", "host"): ("host", "PIFs"),
    ("PIF", "network"): ("network", "PIFs"),
    ("VM", "resident_on"): ("host", "resident_VMs"),
    ("console", "VM"): ("VM", "consoles"),
    ("VM", "snapshot_of"): ("VM", "snapshots"),
    ("VDI", "snapshot_of"): ("VDI", "snapshots"),
    ("VM", "parent"): ("VM", "children"),
    ("task", "subtask_of"): ("task", "subtasks"),
    # Bonds and VLANs (xod/sim/lifecycle/networking.py); VLAN_master_of is one-to-one.
    ("Bond", "master"): ("PIF", "bond_master_of"),
    ("PIF", "bond_slave_of"): ("Bond", "slaves"),
    ("VLAN", "tagged_PIF"): ("PIF", "VLAN_slave_of"),
}

# Classes whose rows never produce events (`gen_events:false`).
SILENT_CLASSES = frozenset({"session"})

_FIELD_RE = re.compile(r"^(\w+)(?: \((dep|rm|proto)\))?: (.+?) (RO|RC|RW)(?: =(.*))?$")


@dataclass(frozen=True)
class FieldSpec:
    name: str
    type: str  # as in the reference: "int", "VM ref", "string set", "(string -> string) map" ...
    qualifier: str  # RO | RC | RW
    kind: str  # string | int | float | bool | datetime | ref | enum | set | map
    default: Any
    has_default: bool
    target: str | None = None  # class of a ref / ref set
    enum: str | None = None  # enum name of an enum / enum set
    item_kind: str | None = None  # kind of a set's items


@dataclass
class ClassSpec:
    name: str
    fields: dict[str, FieldSpec]
    defaults: dict[str, Any] = field(default_factory=dict)

    @property
    def lower(self) -> str:
        return self.name.lower()


def _kind_of(type_text: str) -> tuple[str, str | None, str | None]:
    """(kind, ref target, enum name) of a scalar type text."""
    if type_text in ("string", "int", "float", "bool", "datetime"):
        return type_text, None, None
    if type_text.startswith("enum:"):
        return "enum", None, type_text[5:]
    if type_text.endswith(" ref"):
        return "ref", type_text[:-4], None
    raise ValueError(f"unknown type {type_text!r}")


def _parse_default(spec: FieldSpec, text: str) -> Any:
    if spec.kind == "set":
        inner = text.strip("{}")
        if not inner:
            return []
        items = [item.strip() for item in inner.split(",")]
        return [int(item) if spec.item_kind == "int" else item for item in items]
    if spec.kind == "map":
        inner = text.strip("{}")
        result: dict[str, str] = {}
        for pair in filter(None, (p.strip() for p in inner.split(","))):
            key, value = pair.split(" -> ")
            result[key.strip('"')] = value.strip('"')
        return result
    if spec.kind == "bool":
        return text == "true"
    if spec.kind == "int":
        return int(text)
    if spec.kind == "float":
        return float(text)
    if spec.kind == "datetime":
        return DateTime(text)
    if spec.kind == "string":
        return text.strip('"')
    return text  # ref, enum


_TYPE_DEFAULTS: dict[str, Any] = {
    "string": "",
    "int": 0,
    "float": 0.0,
    "bool": False,
    "datetime": DateTime("19700101T00:00:00Z"),
    "ref": NULL_REF,
}


def _parse_field(text: str) -> FieldSpec:
    match = _FIELD_RE.match(text.strip())
    if match is None:
        raise ValueError(f"cannot parse field {text!r}")
    name, _status, type_text, qualifier, default_text = match.groups()
    target = enum = item_kind = None
    if type_text.endswith(" map"):
        kind = "map"
    elif type_text.endswith(" set"):
        kind = "set"
        item_kind, target, enum = _kind_of(type_text[:-4])
    else:
        kind, target, enum = _kind_of(type_text)
    spec = FieldSpec(
        name, type_text, qualifier, kind, None, default_text is not None, target, enum, item_kind
    )
    if default_text is not None:
        default = _parse_default(spec, default_text)
    elif kind == "set":
        default = []
    elif kind == "map":
        default = {}
    elif kind == "enum":
        default = ENUMS[enum][0]  # type: ignore[index]  # an enum kind names its enum
    else:
        default = _TYPE_DEFAULTS[kind]
    return FieldSpec(
        name, type_text, qualifier, kind, default, spec.has_default, target, enum, item_kind
    )


def _join_continuations(text: str) -> list[str]:
    lines: list[str] = []
    for line in text.splitlines():
        if line.startswith("    ") and lines:
            lines[-1] += " " + line.strip()
        else:
            lines.append(line)
    return lines


def _parse_enums(text: str) -> dict[str, list[str]]:
    result: dict[str, list[str]] = {}
    for line in _join_continuations(text):
        name, values = line.split(": ", 1)
        result[name] = [value.strip() for value in values.split(",")]
    return result


def _parse_classes(text: str) -> dict[str, ClassSpec]:
    classes: dict[str, ClassSpec] = {}
    for line in _join_continuations(text):
        name, body = line.split(": ", 1)
        fields = {spec.name: spec for spec in map(_parse_field, body.split(";"))}
        classes[name] = ClassSpec(name, fields, {f.name: f.default for f in fields.values()})
    return classes


ENUMS: dict[str, list[str]] = _parse_enums(_ENUMS_SPEC)
# Enum values by lower-case spelling: inputs are case-insensitive, outputs canonical.
ENUM_LOOKUP: dict[str, dict[str, str]] = {
    name: {value.lower(): value for value in values} for name, values in ENUMS.items()
}
CLASSES: dict[str, ClassSpec] = _parse_classes(_FIELDS_SPEC)
# Event class names are lower-case; lookups by any case go through this map.
CLASS_BY_LOWER: dict[str, str] = {name.lower(): name for name in CLASSES}


def new_record(cls: str, /, **values: Any) -> dict[str, Any]:
    """A full record of `cls`: the class defaults overridden by `values` (no validation)."""
    record = CLASSES[cls].defaults.copy()
    record.update(values)
    return record
