// Drives xod with the real Xen Orchestra client library (xo-lib) and prints what it saw as JSON.
// Usage: node xo_lib_client.mjs <http url> <email> <password>
import xoLib from 'xo-lib'

const Xo = xoLib.default ?? xoLib
const [url, email, password] = process.argv.slice(2)

async function withClient (credentials, body) {
  const xo = new Xo({ url })
  await xo.open()
  try {
    await xo.signIn(credentials)
    return await body(xo)
  } finally {
    await xo.close()
  }
}

const report = {}
try {
  const token = await withClient({ email, password }, async xo => {
    report.passwordUser = xo.user
    const methods = await xo.call('system.getMethodsInfo')
    report.methodCount = Object.keys(methods).length
    report.getAllObjectsInfo = methods['xo.getAllObjects']
    const vms = await xo.call('xo.getAllObjects', { filter: { type: 'VM' } })
    report.vmIds = Object.keys(vms).sort()
    report.vmTypes = [...new Set(Object.values(vms).map(vm => vm.type))]
    try {
      await xo.call('user.set', { id: 'nobody', bogus: true })
    } catch (error) {
      report.invalidParamsError = { code: error.code, data: error.data }
    }
    return xo.call('token.create', { description: 'xo-lib test', expiresIn: '1 hour' })
  })
  await withClient({ token }, async xo => {
    report.tokenUser = xo.user
    const running = await xo.call('xo.getAllObjects', { filter: 'type:VM power_state:Running', limit: 2 })
    report.limitedCount = Object.keys(running).length
  })
  report.ok = true
} catch (error) {
  report.ok = false
  report.error = { message: error.message, code: error.code, data: error.data }
}
process.stdout.write(JSON.stringify(report) + '\n')
