// Manages users, groups, ACLs and resource sets with the real xo-lib the way Terraform's Go SDK
// does (acl.add then acl.get to find the record, acl.remove expecting true), then signs in as
// the new user and reads its permissions; prints a JSON report.
// Usage: node xo_lib_acl.mjs <http url> <admin email> <admin password> <object id>
import xoLib from 'xo-lib'

const Xo = xoLib.default ?? xoLib
const [url, email, password, objectId] = process.argv.slice(2)

async function errorOf (promise) {
  try {
    await promise
    return null
  } catch (error) {
    return { message: error.message, code: error.code, data: error.data }
  }
}

const report = { ok: false }
const admin = new Xo({ url })
try {
  await admin.open()
  await admin.signIn({ email, password })
  const userId = await admin.call('user.create', { email: 'tf-user', password: 'tf-pw' })
  const groupId = await admin.call('group.create', { name: 'tf-group' })
  report.addUser = await admin.call('group.addUser', { id: groupId, userId })
  report.duplicateGroup = await errorOf(admin.call('group.create', { name: 'tf-group' }))
  const triple = { subject: userId, object: objectId, action: 'operator' }
  report.add = await admin.call('acl.add', triple)
  const find = async () => (await admin.call('acl.get')).filter(acl =>
    acl.subject === triple.subject && acl.object === triple.object && acl.action === triple.action)
  report.found = await find()
  report.add2 = await admin.call('acl.add', triple)
  report.foundAgain = await find()
  await admin.call('acl.add', { subject: groupId, object: objectId, action: 'viewer' })
  report.resourceSet = await admin.call('resourceSet.create', {
    name: 'tf-set', subjects: [groupId], objects: [objectId], limits: { cpus: { available: 4, total: 4 } },
  })
  report.users = await admin.call('user.getAll')
  report.groups = await admin.call('group.getAll')

  const user = new Xo({ url })
  await user.open()
  await user.signIn({ email: 'tf-user', password: 'tf-pw' })
  report.permissions = await user.call('acl.getCurrentPermissions')
  report.userSets = await user.call('resourceSet.getAll', { id: 'dummy' })
  report.roles = await user.call('role.getAll')
  report.userAclGet = await errorOf(user.call('acl.get'))
  await user.close()

  report.remove = await admin.call('acl.remove', triple)
  report.afterRemove = await find()
  report.removeAgain = await admin.call('acl.remove', triple)
  report.deleteUser = await admin.call('user.delete', { id: userId })
  report.aclsLeft = await admin.call('acl.get')
  report.ok = true
} catch (error) {
  report.error = { message: error.message, code: error.code, data: error.data, stack: error.stack }
} finally {
  await admin.close()
}
console.log(JSON.stringify(report))
