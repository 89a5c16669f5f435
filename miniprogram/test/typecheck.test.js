'use strict'

// Checks with real artifacts, installed by `npm ci` (make test runs it):
//   - tsc (typescript) over the library, whose JSDoc types put every wx.*
//     call under miniprogram-api-typings (WeChat's official typings), and
//     over typecheck/usage.ts, which feeds WeChat's own result types to every
//     public method as the README does;
//   - tsc refusing typecheck/wrong/, a fixture of misspelt names;
//   - es-check: wxsession.js is ES5 syntax;
//   - npm pack: what the package would publish.
// Without node_modules these are skipped, unless CI is set or
// WXSESSION_CLIENT_CHECKS=required (make test sets it): then they fail.

const { test } = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { spawnSync } = require('node:child_process')

const root = path.join(__dirname, '..')
const bin = (name) => path.join(root, 'node_modules', '.bin', name)
const installed = fs.existsSync(bin('tsc')) && fs.existsSync(bin('es-check'))
const required = !!process.env.CI || process.env.WXSESSION_CLIENT_CHECKS === 'required'
const skip = installed || required ? false : 'devDependencies not installed: run `npm ci` in miniprogram/ (make test does)'

function run (cmd, args) {
  const r = spawnSync(cmd, args, { cwd: root, encoding: 'utf8', timeout: 300000 })
  if (r.error) throw r.error
  return { status: r.status, out: (r.stdout || '') + (r.stderr || '') }
}

test('types: tsc --noEmit over the library (checkJs against miniprogram-api-typings) and typecheck/usage.ts passes', { skip }, () => {
  const r = run(bin('tsc'), ['-p', '.'])
  assert.equal(r.status, 0, 'tsc -p . failed:\n' + r.out)
  const config = JSON.parse(fs.readFileSync(path.join(root, 'tsconfig.json'), 'utf8'))
  assert.deepEqual(config.compilerOptions.types, ['miniprogram-api-typings'])
  assert.equal(config.compilerOptions.checkJs, true)
  assert.ok(config.files.includes('wxsession.js') && config.files.includes('typecheck/usage.ts'))
  // The wx object really is typed with WeChat's typings, so the calls above were checked.
  assert.match(fs.readFileSync(path.join(root, 'wxsession.js'), 'utf8'), /@type \{WechatMiniprogram\.Wx\}/)
})

test('types: tsc refuses every deliberately wrong name in typecheck/wrong/, and nothing else', { skip }, () => {
  const r = run(bin('tsc'), ['-p', 'typecheck/wrong'])
  assert.notEqual(r.status, 0, 'tsc accepted the wrong fixture:\n' + r.out)
  const got = new Set()
  for (const m of r.out.matchAll(/^typecheck\/wrong\/([\w.-]+)\((\d+),\d+\): error TS\d+/gm)) got.add(m[1] + ':' + m[2])
  const want = new Set()
  for (const file of ['wrong-usage.ts', 'wrong-wx.js']) {
    fs.readFileSync(path.join(root, 'typecheck', 'wrong', file), 'utf8').split('\n').forEach((line, i) => {
      if (/\/\/ wrong: /.test(line)) want.add(file + ':' + (i + 1))
    })
  }
  assert.ok(want.size >= 8, 'the fixture marks its wrong lines')
  assert.deepEqual([...got].sort(), [...want].sort(), 'tsc output:\n' + r.out)
  // The two names the issue calls out, by name.
  assert.match(r.out, /'headers' does not exist in type 'RequestOption/)
  assert.match(r.out, /'headers' does not exist in type 'RequestOptions'/)
  assert.match(r.out, /Property 'status' does not exist on type 'RequestSuccessCallbackResult/)
})

test('es5: wxsession.js is ES5 syntax (es-check), and es-check does refuse ES2015', { skip }, () => {
  const ok = run(bin('es-check'), ['es5', 'wxsession.js', '--noColor'])
  assert.equal(ok.status, 0, ok.out)
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wxsession-es5-'))
  const es6 = path.join(dir, 'es6.js')
  fs.writeFileSync(es6, 'const f = () => 1\n')
  try {
    const bad = run(bin('es-check'), ['es5', es6, '--noColor'])
    assert.notEqual(bad.status, 0, 'es-check accepted an arrow function:\n' + bad.out)
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
})

test('package: publishable, dependency-free, ships the library, its types and README; devDependencies pinned exactly', () => {
  const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'))
  assert.equal(pkg.private, undefined)
  assert.equal(pkg.license, 'MIT')
  assert.ok(pkg.repository && /github\.com/.test(pkg.repository.url), 'repository')
  assert.equal(pkg.main, 'wxsession.js')
  assert.equal(pkg.types, 'wxsession.d.ts')
  assert.equal(pkg.dependencies, undefined, 'no runtime dependencies')
  for (const [name, version] of Object.entries(pkg.devDependencies)) assert.match(version, /^\d+\.\d+\.\d+$/, name + ' pinned exactly')
  const lock = JSON.parse(fs.readFileSync(path.join(root, 'package-lock.json'), 'utf8'))
  assert.deepEqual(lock.packages[''].devDependencies, pkg.devDependencies, 'package-lock.json matches package.json')
  // The main entry loads with nothing installed beside it (WeChat devtools' 构建 npm copies it alone).
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wxsession-pkg-'))
  try {
    fs.copyFileSync(path.join(root, pkg.main), path.join(dir, 'index.js'))
    const lib = require(path.join(dir, 'index.js'))
    assert.equal(typeof lib.createClient, 'function')
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
})

test('package: npm pack would publish exactly the library, its types, README and package.json', { skip: required || spawnSync('npm', ['--version']).status === 0 ? false : 'npm not on PATH' }, () => {
  const r = spawnSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: root, encoding: 'utf8' })
  assert.equal(r.status, 0, r.stderr)
  const files = JSON.parse(r.stdout)[0].files.map(f => f.path).sort()
  assert.deepEqual(files, ['LICENSE', 'README.md', 'package.json', 'wxsession.d.ts', 'wxsession.js'])
})
