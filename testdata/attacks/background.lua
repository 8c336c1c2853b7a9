-- Attack: leave a process running after the step ends: a daemon in its own
-- session, a nohup'ed child and a plain background child, each appending a
-- heartbeat to a file in the run's /tmp and named hwe-bg-@ID@ so the test
-- can look for it on the host. The step itself succeeds; then check_<runner>
-- (which depends on it) watches the heartbeat file: it must not grow once
-- the step has ended.
--
-- Lua and WASM steps cannot start processes; their nearest things are
-- checked instead: a Lua step that tampers with the shared libraries and
-- globals (check_lua must see none of it), and a WASM guest that leaves a
-- goroutine running (check_wasm, the same module, grant and environment, so
-- it may reuse the instance, must not see it run).
local heartbeat = [[while :; do date +%s%N >> /tmp/heartbeat-RUNNER-@ID@; sleep 0.05; done]]
local function hb(runner) return (heartbeat:gsub("RUNNER", runner)) end

local check = [[
f=/tmp/heartbeat-RUNNER-@ID@
[ -e "$f" ] || { echo "no heartbeat file: the attack did not start its processes" >&2; exit 1; }
a=$(wc -c < "$f"); sleep 0.5; b=$(wc -c < "$f")
if [ "$a" != "$b" ]; then
  echo "a background process of step RUNNER is still running after the step ended (heartbeat grew from $a to $b bytes)" >&2
  exit 1
fi
echo '{"stopped": true}'
]]

workflow = {
  name = "attack_background",
  steps = {
    python = {
      language = "python",
      code = [[
import subprocess, time

def run():
    loop = "]] .. hb("python") .. [["
    subprocess.Popen(["bash", "-c", "exec -a hwe-bg-@ID@ bash -c '" + loop + "'"], start_new_session=True)
    subprocess.Popen(["nohup", "bash", "-c", "exec -a hwe-bg-@ID@ sleep 600"])
    subprocess.Popen(["bash", "-c", "exec -a hwe-bg-@ID@ sleep 600"])
    time.sleep(0.2)
    return {"started": True}
]],
    },
    javascript = {
      language = "javascript",
      code = [[
const { spawn } = require('child_process');

async function run() {
  const loop = "]] .. hb("javascript") .. [[";
  spawn('bash', ['-c', `exec -a hwe-bg-@ID@ bash -c '${loop}'`], { detached: true, stdio: 'ignore' }).unref();
  spawn('nohup', ['bash', '-c', 'exec -a hwe-bg-@ID@ sleep 600'], { stdio: 'ignore' }).unref();
  setInterval(() => {}, 1000); // a timer left in the worker's event loop
  await new Promise((resolve) => setTimeout(resolve, 200));
  return { started: true };
}
]],
    },
    shell = {
      language = "shell",
      code = [[
setsid bash -c "exec -a hwe-bg-@ID@ bash -c ']] .. hb("shell") .. [['" &
nohup bash -c 'exec -a hwe-bg-@ID@ sleep 600' > /dev/null 2>&1 &
(exec -a hwe-bg-@ID@ sleep 600 &)
sleep 0.2
echo '{"started": true}'
]],
    },
    lua = {
      code = [[
function run()
  string.upper = function() return "tampered" end
  table.insert = nil
  left_behind = "by an earlier step"
  return { started = true }
end
]],
    },
    check_lua = {
      depends_on = { "lua" },
      code = [[
function run()
  if string.upper("a") ~= "A" or table.insert == nil or left_behind ~= nil then
    error("state left by an earlier step is visible: string.upper('a') = " .. tostring(string.upper("a")) ..
          ", left_behind = " .. tostring(left_behind))
  end
  return { stopped = true }
end
]],
    },
    wasm = { language = "wasm", module = "@WASM@", func = "bg_start" },
    check_wasm = { language = "wasm", module = "@WASM@", func = "bg_check", depends_on = { "wasm" } },
    check_python = { language = "shell", depends_on = { "python" }, code = (check:gsub("RUNNER", "python")) },
    check_javascript = { language = "shell", depends_on = { "javascript" }, code = (check:gsub("RUNNER", "javascript")) },
    check_shell = { language = "shell", depends_on = { "shell" }, code = (check:gsub("RUNNER", "shell")) },
  },
}
