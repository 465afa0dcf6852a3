// Compile a solc standard-JSON input (stdin) with solc-js; print the standard-JSON output.
// Imports starting with "@openzeppelin/" resolve inside NODE_TOOLS/node_modules only, so the
// build never reads files outside the pinned npm tree. Usage: node solc_compile.js <node_modules>
"use strict";
const fs = require("fs");
const path = require("path");

const modules = path.resolve(process.argv[2]);
const solc = require(path.join(modules, "solc"));

function findImports(importPath) {
  if (!importPath.startsWith("@openzeppelin/")) {
    return { error: `import outside @openzeppelin/ not allowed: ${importPath}` };
  }
  const full = path.resolve(modules, importPath);
  if (!full.startsWith(modules + path.sep)) return { error: `bad import path: ${importPath}` };
  try {
    return { contents: fs.readFileSync(full, "utf8") };
  } catch (err) {
    return { error: `cannot read ${importPath}: ${err.message}` };
  }
}

const input = fs.readFileSync(0, "utf8");
const output = JSON.parse(solc.compile(input, { import: findImports }));
output.compilerVersion = solc.version();
process.stdout.write(JSON.stringify(output));
