// Signs in with the real xo-lib, prints "ready", then collects `all` notifications until it has
// seen an enter carrying a VM named <name> and an exit of <exitId>; prints what it saw as JSON.
// Usage: node xo_lib_all.mjs <http url> <email> <password> <name> <exitId>
import xoLib from 'xo-lib'

const Xo = xoLib.default ?? xoLib
const [url, email, password, name, exitId] = process.argv.slice(2)

const report = { kinds: [], ok: false }
const xo = new Xo({ url })
const done = new Promise((resolve, reject) => {
  const timer = setTimeout(() => reject(new Error('timed out waiting for notifications')), 20000)
  xo.on('notification', ({ method, params }) => {
    if (method !== 'all') return
    report.kinds.push(params.type)
    if (params.type === 'enter') {
      const found = Object.values(params.items).find(o => o.name_label === name)
      if (found !== undefined) report.entered = found
    } else if (params.type === 'exit' && exitId in params.items) {
      report.exitValue = params.items[exitId]
    }
    if (report.entered !== undefined && report.exitValue !== undefined) {
      clearTimeout(timer)
      resolve()
    }
  })
})
try {
  await xo.open()
  await xo.signIn({ email, password })
  process.stdout.write('ready\n')
  await done
  report.ok = true
} catch (error) {
  report.error = { message: error.message, code: error.code }
} finally {
  await xo.close()
}
process.stdout.write(JSON.stringify(report) + '\n')
