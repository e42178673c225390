// Runs vm.start, vm.stop and vm.clone with the real xo-lib and records, for each call, its result
// (or error) and whether an `all` notification then showed the change; prints a JSON report.
// Usage: node xo_lib_commands.mjs <http url> <email> <password> <halted VM id>
import xoLib from 'xo-lib'

const Xo = xoLib.default ?? xoLib
const [url, email, password, vmId] = process.argv.slice(2)
const NOTIFICATION_TIMEOUT = 5000

const entered = [] // every object an `all` enter notification carried, in order
const waiters = []
function onNotification ({ method, params }) {
  if (method !== 'all' || params.type !== 'enter') return
  for (const object of Object.values(params.items)) {
    entered.push(object)
    for (const waiter of waiters.splice(0)) {
      if (!waiter.check(object)) waiters.push(waiter)
    }
  }
}

// Resolves with the first object (entered at or after `from`) that `predicate` accepts.
function seen (from, predicate) {
  const found = entered.slice(from).find(predicate)
  if (found !== undefined) return Promise.resolve(found)
  return new Promise(resolve => {
    const timer = setTimeout(() => resolve(null), NOTIFICATION_TIMEOUT)
    waiters.push({
      check: object => {
        if (!predicate(object)) return false
        clearTimeout(timer)
        resolve(object)
        return true
      },
    })
  })
}

async function step (xo, method, params, predicateOf) {
  const from = entered.length
  const entry = {}
  try {
    entry.result = await xo.call(method, params)
  } catch (error) {
    entry.error = { message: error.message, code: error.code, data: error.data }
    return entry
  }
  const object = await seen(from, predicateOf(entry.result))
  entry.notified = object === null ? null : { id: object.id, power_state: object.power_state, name_label: object.name_label }
  return entry
}

const report = { ok: false }
const xo = new Xo({ url })
xo.on('notification', onNotification)
try {
  await xo.open()
  await xo.signIn({ email, password })
  report.start = await step(xo, 'vm.start', { id: vmId }, () => o => o.id === vmId && o.power_state === 'Running')
  report.stop = await step(xo, 'vm.stop', { id: vmId, force: true }, () => o => o.id === vmId && o.power_state === 'Halted')
  report.clone = await step(xo, 'vm.clone', { id: vmId, name: 'cloned by xo-lib', full_copy: false }, newId => o => o.id === newId)
  try {
    await xo.call('vm.stop', { id: vmId })
  } catch (error) {
    report.badPowerState = { message: error.message, code: error.code, data: error.data }
  }
  report.ok = true
} catch (error) {
  report.error = { message: error.message, code: error.code, data: error.data }
} finally {
  await xo.close()
}
process.stdout.write(JSON.stringify(report) + '\n')
