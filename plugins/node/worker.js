// hwe node worker: runs JavaScript steps sent by the host, one at a time.
// Protocol (see plugins/internal/warm): requests arrive as JSON lines on fd 3,
// replies leave as JSON lines on fd 4; fd 1 and fd 2 belong to the steps.
// While a step runs, its host API calls (require('hwe')) go out on fd 4 and
// their answers come back on fd 3. process.argv[1] is the source of the hwe
// module (guest-sdks/javascript/hwe.js).
//
// Each step's code is compiled as the body of a fresh function, the way Node
// wraps a CommonJS module, so its top-level declarations (run, helpers) are
// its own. The parameters are what the reference's generated file provided:
// inputs, outputResult and process, plus require/module/exports. Globals a
// step adds or replaces are put back afterwards, and timers it leaves
// pending are cancelled.
//
// No process a step started outlives the step: before replying, the worker
// kills what is left. Under the sandbox the worker is PID 1 of its own PID
// namespace, so that is kill(-1, SIGKILL); orphans adopted by the worker
// become zombies that Node cannot reap, so a step that leaves any makes the
// worker ask the host to retire it ({"retire": ...}). Without the sandbox
// the worker kills its children and its process group after a step that
// used child_process; a process that left the group (setsid) and lost its
// parent escapes that.
'use strict';

const fs = require('fs');
const net = require('net');
const path = require('path');
const vm = require('vm');
const childProcess = require('child_process');
const { createRequire } = require('module');

const REPLY_FD = 4;

function writeAllSync(fd, text) {
  const buf = Buffer.from(text, 'utf8');
  let off = 0;
  while (off < buf.length) {
    try {
      off += fs.writeSync(fd, buf, off);
    } catch (err) {
      if (err.code !== 'EAGAIN') throw err;
    }
  }
}

function reply(obj) {
  writeAllSync(REPLY_FD, JSON.stringify(obj) + '\n');
}

// Processes a step leaves behind. What the clean-up uses is bound now, so a
// step that replaces process.kill or fs functions does not change it.
const WORKER_PID = process.pid;
const killPid = process.kill.bind(process);
const { readdirSync, readFileSync, readlinkSync } = fs;
let maySpawn = false; // without a PID namespace: the step used child_process

// Note every way child_process starts a process (only needed without a PID
// namespace, where looking for leftovers costs a scan of /proc).
if (WORKER_PID !== 1) {
  for (const name of ['spawn', 'spawnSync', 'exec', 'execSync', 'execFile', 'execFileSync', 'fork']) {
    const fn = childProcess[name];
    childProcess[name] = function (...args) {
      maySpawn = true;
      return fn.apply(this, args);
    };
  }
  const spawnMethod = childProcess.ChildProcess.prototype.spawn;
  childProcess.ChildProcess.prototype.spawn = function (...args) {
    maySpawn = true;
    return spawnMethod.apply(this, args);
  };
}

const pause = (ms) => new Promise((resolve) => original.setTimeout(resolve, ms));

// procStat is [state, ppid, pgrp] of a process, or null if it is gone.
function procStat(pid) {
  let stat;
  try {
    stat = readFileSync('/proc/' + pid + '/stat', 'latin1');
  } catch (_) {
    return null;
  }
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return [f[0], Number(f[1]), Number(f[2])];
}

// otherProcesses lists the processes /proc shows, other than the worker,
// for which keep(state, ppid, pgrp) is true.
function otherProcesses(keep) {
  const out = [];
  for (const name of readdirSync('/proc')) {
    const pid = Number(name);
    if (!Number.isInteger(pid) || pid === WORKER_PID) continue;
    const st = procStat(pid);
    if (st && keep(st[0], st[1], st[2])) out.push({ pid, zombie: st[0] === 'Z' });
  }
  return out;
}

function ownProc() {
  try {
    return readlinkSync('/proc/self') === String(WORKER_PID);
  } catch (_) {
    return false;
  }
}

// endProcesses kills every process the step left behind. It resolves to
// null when none is left, else to why the worker should be retired.
async function endProcesses() {
  const deadline = Date.now() + 2000;
  if (WORKER_PID === 1) {
    const procIsOurs = ownProc(); // /proc of this PID namespace
    for (;;) {
      try {
        killPid(-1, 'SIGKILL'); // every other process of the namespace
      } catch (err) {
        if (err.code === 'ESRCH') return null; // none: the usual case
      }
      await pause(5); // Node reaps the children it started
      if (procIsOurs) {
        const left = otherProcesses(() => true);
        if (left.length === 0) return null;
        if (left.every((p) => p.zombie)) {
          return left.length + ' processes the step left behind were adopted by the worker, which cannot reap them';
        }
      }
      if (Date.now() > deadline) return 'processes the step started could not be ended';
    }
  }
  if (!maySpawn) return null;
  maySpawn = false;
  const own = procStat(WORKER_PID);
  const leadsGroup = own !== null && own[2] === WORKER_PID;
  for (;;) {
    const left = otherProcesses((state, ppid, pgrp) => ppid === WORKER_PID || (leadsGroup && pgrp === WORKER_PID));
    const alive = left.filter((p) => !p.zombie);
    for (const p of alive) {
      try { killPid(p.pid, 'SIGKILL'); } catch (_) { /* gone */ }
    }
    if (left.length === 0) return null;
    await pause(5); // Node reaps the children it started; init the others
    if (Date.now() > deadline) return 'processes the step started could not be ended';
  }
}

const PARAMS = ['exports', 'require', 'module', '__filename', '__dirname', 'inputs', 'outputResult', 'process'];

// The hwe module, compiled once; each step gets a fresh instance.
const hweSource = process.argv[1] || '';
process.argv.splice(1);
const hweFactory = vm.compileFunction(hweSource, ['exports', 'require', 'module', '__filename', '__dirname'], { filename: 'hwe.js' });

// Host API calls in flight, by id. Ids never repeat, so an answer that
// arrives after its step ended finds nothing here and is dropped.
let nextCallId = 0;
const pendingCalls = new Map();

function newHweModule(token) {
  const mod = { exports: {} };
  hweFactory.call(mod.exports, mod.exports, require, mod, 'hwe.js', '.');
  mod.exports._connect((op, args) => {
    if (!current || current.token !== token) {
      return Promise.resolve({ error: { message: 'hwe: the host API is only available while an hwe step runs' } });
    }
    const id = ++nextCallId;
    return new Promise((resolve) => {
      pendingCalls.set(id, resolve);
      reply({ call: op, id, token, args }); // "call" first: the host tells calls from replies by it
    });
  });
  return mod.exports;
}

function answerCall(msg) {
  const resolve = pendingCalls.get(msg.reply_to);
  if (resolve) {
    pendingCalls.delete(msg.reply_to);
    resolve(msg);
  }
}

// stepRequire is the step's require: Node's, plus the hwe module, made
// on first use (a step that does not use it pays nothing).
function stepRequire(filename, token) {
  const base = createRequire(filename);
  let hwe = null;
  const stepReq = function require(id) {
    if (id !== 'hwe') return base(id);
    if (hwe === null) hwe = newHweModule(token);
    return hwe;
  };
  Object.assign(stepReq, base);
  return stepReq;
}

const original = {
  exit: process.exit,
  stdoutWrite: process.stdout.write,
  stderrWrite: process.stderr.write,
  setTimeout: globalThis.setTimeout,
  setInterval: globalThis.setInterval,
  setImmediate: globalThis.setImmediate,
  clearTimeout: globalThis.clearTimeout,
  clearInterval: globalThis.clearInterval,
  clearImmediate: globalThis.clearImmediate,
};
const idleDir = process.cwd();

// Globals as they are before any step ran.
const baseline = new Map();
function snapshotGlobals() {
  for (const key of Reflect.ownKeys(globalThis)) {
    baseline.set(key, Object.getOwnPropertyDescriptor(globalThis, key));
  }
}

function restoreGlobals() {
  for (const key of Reflect.ownKeys(globalThis)) {
    if (!baseline.has(key)) {
      try { delete globalThis[key]; } catch (_) { /* non-configurable: leave it */ }
    }
  }
  for (const [key, desc] of baseline) {
    const now = Object.getOwnPropertyDescriptor(globalThis, key);
    if (!now || now.value !== desc.value || now.get !== desc.get || now.set !== desc.set) {
      try { Object.defineProperty(globalThis, key, desc); } catch (_) { /* frozen by the step */ }
    }
  }
  process.exit = original.exit;
  process.stdout.write = original.stdoutWrite;
  process.stderr.write = original.stderrWrite;
}

// Timers a step starts are tracked so that those still pending when the step
// is over can be cancelled.
function trackTimers() {
  const pending = [];
  const wrap = (start, stop) => function (...args) {
    const handle = start.apply(this, args);
    pending.push(() => stop(handle));
    return handle;
  };
  globalThis.setTimeout = wrap(original.setTimeout, original.clearTimeout);
  globalThis.setInterval = wrap(original.setInterval, original.clearInterval);
  globalThis.setImmediate = wrap(original.setImmediate, original.clearImmediate);
  return () => { for (const stop of pending) stop(); };
}

class ExitCalled extends Error {
  constructor(code) {
    super('process.exit(' + code + ')');
    this.code = code;
  }
}

// The step that is running, so errors thrown outside its call stack (timers,
// unhandled rejections, process.exit in a callback) fail it.
let current = null;
function failCurrent(err) {
  if (current) current.fail(err);
  else writeAllSync(2, 'hwe node worker: error outside a step: ' + describe(err) + '\n');
}
process.on('uncaughtException', failCurrent);
process.on('unhandledRejection', failCurrent);

function describe(err) {
  if (err && typeof err === 'object' && 'message' in err) return String(err.message);
  return String(err);
}

// stepLine finds the innermost frame of the step's own code in a stack.
function stepLine(err, filename) {
  const stack = err && typeof err === 'object' ? String(err.stack || '') : '';
  const escaped = filename.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  if (err instanceof SyntaxError) {
    const m = new RegExp('^' + escaped + ':(\\d+)').exec(stack);
    if (m) return Number(m[1]);
  }
  const frame = new RegExp('[ (]' + escaped + ':(\\d+):\\d+\\)?$');
  for (const line of stack.split('\n').slice(1)) {
    const m = frame.exec(line);
    if (m) return Number(m[1]);
  }
  return 0;
}

function errorReply(req, err) {
  if (err instanceof ExitCalled) {
    return { ok: false, message: "JavaScript step '" + req.step + "' failed: " + err.message, line: stepLine(err, req.filename) };
  }
  let message = describe(err);
  if (err instanceof SyntaxError && req.compiling) message = 'SyntaxError: ' + message;
  return {
    ok: false,
    message: 'Error in JavaScript step ' + req.step + ': ' + message,
    line: stepLine(err, req.filename),
    trace: err && typeof err === 'object' && err.stack ? String(err.stack) : '',
  };
}

function compile(req) {
  req.compiling = true;
  const offset = req.line > 1 ? req.line - 1 : 0;
  // The code is the function body; the line after it hands back `run`
  // (declared by the code, or assigned as a global).
  const body = req.code + "\n;return typeof run === 'undefined' ? undefined : run;";
  const fn = vm.compileFunction(body, PARAMS, { filename: req.filename, lineOffset: offset });
  req.compiling = false;
  return fn;
}

async function runStep(req) {
  process.chdir(req.cwd);
  for (const key of Object.keys(process.env)) delete process.env[key];
  Object.assign(process.env, req.env);

  const cancelTimers = trackTimers();
  let failed;
  const failure = new Promise((_, reject) => { failed = reject; });
  failure.catch(() => {});
  current = { fail: failed, token: req.host_token };
  process.exit = (code) => { throw new ExitCalled(code === undefined ? (process.exitCode || 0) : code); };
  try {
    const fn = compile(req);
    const filename = path.join(req.cwd, 'step.js');
    const mod = { exports: {}, filename, id: filename, loaded: false };
    const inputs = req.inputs || {};
    const outputResult = (result) => { console.log(JSON.stringify(result)); };
    const stepReq = stepRequire(filename, req.host_token);
    const run = fn.call(mod.exports, mod.exports, stepReq, mod, filename, req.cwd, inputs, outputResult, process);

    // The reference's trailer, with one fix: a promise is awaited.
    if (typeof run !== 'function') throw new Error('No run function defined in step ' + req.step);
    let result = await Promise.race([req.has_inputs ? run(inputs) : run(), failure]);
    if (result === undefined || result === null) result = {};
    const line = typeof result === 'object' ? JSON.stringify(result) : JSON.stringify({ value: result });
    // A result line past the output limit is refused here rather than sent.
    const max = req.max_output || 0;
    if (max > 0 && line !== undefined && line.length * 3 > max) {
      const size = Buffer.byteLength(line, 'utf8');
      if (size > max) return { ok: false, limit: 'output', size, message: 'output limit exceeded', line: 0 };
    }
    return { ok: true, result_line: line === undefined ? 'undefined' : line };
  } catch (err) {
    if (err instanceof ExitCalled && Number(err.code) === 0) {
      return { ok: true }; // exited early: the result is what it printed
    }
    return errorReply(req, err);
  } finally {
    current = null;
    pendingCalls.clear();
    cancelTimers();
    restoreGlobals();
  }
}

function checkStep(req) {
  try {
    compile(req);
    return { ok: true };
  } catch (err) {
    return errorReply(req, err);
  }
}

function endStreams(sentinel) {
  const mark = sentinel + '\n';
  return Promise.all([
    new Promise((resolve) => original.stdoutWrite.call(process.stdout, mark, resolve)),
    new Promise((resolve) => original.stderrWrite.call(process.stderr, mark, resolve)),
  ]);
}

async function handle(req) {
  let result;
  try {
    result = req.op === 'check' ? checkStep(req) : await runStep(req);
  } catch (err) {
    result = { ok: false, message: 'step setup failed: ' + describe(err), line: 0 };
  }
  let retire = null;
  try {
    retire = await endProcesses();
  } catch (err) {
    retire = 'ending the processes the step left failed: ' + describe(err);
  }
  try { process.chdir(idleDir); } catch (_) { /* keep going */ }
  await endStreams(req.sentinel);
  if (retire) reply({ retire });
  reply(result);
}

function serve() {
  const requests = new net.Socket({ fd: 3, readable: true, writable: false });
  requests.setEncoding('utf8');
  let buffered = '';
  let queue = Promise.resolve();
  requests.on('data', (chunk) => {
    buffered += chunk;
    let nl;
    while ((nl = buffered.indexOf('\n')) >= 0) {
      const msg = JSON.parse(buffered.slice(0, nl));
      buffered = buffered.slice(nl + 1);
      if (msg.reply_to !== undefined) {
        answerCall(msg); // at once: the step that waits for it holds the queue
      } else {
        queue = queue.then(() => handle(msg));
      }
    }
  });
  requests.on('end', () => original.exit.call(process, 0));
  snapshotGlobals();
  reply({ ready: true, version: process.version });
}

serve();
