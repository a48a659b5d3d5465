// What an Electron app's main process writes to run its Python backend
// under berth: launch berth with the app's own name and the backends it
// ships, show their status in the window, stop everything on quit.
//
// The packaged app's resources folder holds berth and the backends:
//   resources/berth/berth             the berth executable
//   resources/backends/python.yaml    its manifest (path: "${resources}/python/backend")
//   resources/python/backend          the PyInstaller build
// The window's preload script exposes `berth:*` over contextBridge.

import path from 'node:path'
import { fileURLToPath } from 'node:url'

import { BrowserWindow, app, ipcMain } from 'electron'
import { launch } from 'berth-client'

const here = path.dirname(fileURLToPath(import.meta.url))
// Packaged: Electron's resources folder; from the source tree: the project.
const resources = app.isPackaged ? process.resourcesPath : path.join(here, '..')

let berth = null
let window = null

async function start() {
  // --with-parent ties berth to this process: if the app crashes, berth
  // stops every backend and exits by itself.
  berth = await launch({
    app: 'acme-notes',
    berth: path.join(resources, 'berth', 'berth'),
    backends: [path.join(resources, 'backends')],
    env: { BERTH_RESOURCES: resources },
  })

  window = new BrowserWindow({
    width: 900,
    height: 600,
    webPreferences: { preload: path.join(here, 'preload.js') },
  })
  await window.loadFile(path.join(here, 'index.html'))

  // The renderer asks; errors reach it as their one-line message.
  ipcMain.handle('berth:status', () => berth.status())
  ipcMain.handle('berth:start', (_event, id) => berth.start(id))
  ipcMain.handle('berth:stop', (_event, id) => berth.stop(id))
  ipcMain.handle('berth:restart', (_event, id) => berth.restart(id))
  ipcMain.handle('berth:ping', (_event, id) =>
    berth.send(id, { action: 'ping', id: 1 }, { wait: { key: 'id', value: 1 }, timeoutMs: 2000 }),
  )

  // Every change, as it happens: the full list first, then one event each.
  watchStatus().catch((error) => console.error(`berth: ${error.message} (${error.code})`))

  // The backend's port is in its status once it runs.
  const python = await berth.start('python')
  console.log(`python runs on port ${python.port}`)
}

async function watchStatus() {
  for await (const item of berth.watch()) {
    if (window === null || window.isDestroyed()) break
    if (Array.isArray(item)) window.webContents.send('berth:list', item)
    else if (item.event === 'status') window.webContents.send('berth:status', item.backend)
    else window.webContents.send('berth:removed', item.file)
  }
}

app.whenReady().then(start).catch((error) => {
  // e.g. BERTH_EXITED with berth's own line: "berth: backends folder ...: does not exist"
  console.error(`cannot start berth: ${error.message} (${error.code})`)
  app.exit(1)
})

// Stop the backends before the app goes: hold the quit until berth exits.
app.on('before-quit', (event) => {
  if (berth === null || berth.closed) return
  event.preventDefault()
  berth.close().finally(() => app.quit())
})

app.on('window-all-closed', () => app.quit())
