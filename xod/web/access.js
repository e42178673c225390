// Whether the signed-in user may act on an object, as xod checks it (xod/api/access.py): the
// `admin` and `write` levels act on everything; other users need an ACL role granting the
// permission on the object or on the object it inherits from. The inheritance is XO's resolver
// (xod/acl/resolver.py), for the types the dashboard acts on; the grants are
// acl.getCurrentPermissions' answer ({object id: {permission: 1}}).

const ACTS_ON_EVERYTHING = new Set(["admin", "write"]);
// Per type, the field naming the object whose permission it inherits.
const LINKS = {
  VM: "$container",
  "VM-snapshot": "$snapshot_of",
  "VM-template": "$pool",
  SR: "$container",
  host: "$pool",
  network: "$pool",
};

export function actsOnEverything(level) {
  return ACTS_ON_EVERYTHING.has(level);
}

/** `getObject(id)` → the object (with its `type`) or undefined; an unknown object is never granted. */
export function granted(grants, getObject, id, permission) {
  const object = getObject(id);
  if (object === undefined) return false;
  if (grants[id]?.[permission]) return true;
  const link = LINKS[object.type];
  const target = link && object[link];
  return Boolean(target) && target !== id && granted(grants, getObject, target, permission);
}
