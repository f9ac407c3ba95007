import * as core from '@actions/core';
import { run, ActionRuntime } from './main';
import { cancellation } from './signals';

/** The runner's @actions/core behind the ActionRuntime interface. */
function actionRuntime(): ActionRuntime {
  return {
    getInput: (name) => core.getInput(name),
    setOutput: (name, value) => core.setOutput(name, value),
    setSecret: (value) => core.setSecret(value),
    setFailed: (message) => core.setFailed(message),
    info: (message) => core.info(message),
    warning: (message) => core.warning(message),
    notice: (message) => core.notice(message),
    error: (message, a) => core.error(message, a ? { file: a.file, startLine: a.startLine, startColumn: a.startColumn, title: a.title } : {}),
    group: (name, fn) => core.group(name, fn),
    writeSummary: async (md) => {
      if (process.env.GITHUB_STEP_SUMMARY) await core.summary.addRaw(md).write();
    },
    env: process.env,
    signal: cancellation((s) => process.stdout.write(s)),
  };
}

void run(actionRuntime());
