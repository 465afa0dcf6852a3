// Rewrites package.json in the working directory to depend on the named packages only (at the
// versions it pins), so that `npm prune` after `npm ci` leaves one tool of a shared lock file.
const fs = require('node:fs')
const keep = process.argv.slice(2)
const pkg = JSON.parse(fs.readFileSync('package.json', 'utf8'))
const missing = keep.filter((name) => !(name in pkg.dependencies))
if (missing.length) throw new Error(`not in package.json: ${missing.join(', ')}`)
pkg.dependencies = Object.fromEntries(keep.map((name) => [name, pkg.dependencies[name]]))
fs.writeFileSync('package.json', JSON.stringify(pkg, null, 2) + '\n')
