-- The victim of other_run_read.lua: a run whose steps leave a private file
-- in the run's /tmp (also their working folder) and in the private folder
-- of their process (/hwe/work inside the sandbox), and stay alive until the
-- test, which finds the files on the host by name, has tried to read them
-- from another run (it then creates /tmp/release-@ID@ in this run's /tmp).
local wait = 60
workflow = {
  name = "attack_other_run_victim",
  concurrency = 3, -- all three at once: they wait for the reader together
  steps = {
    python = {
      language = "python",
      timeout = wait .. "s",
      code = [[
import os, time

def run():
    private = "/hwe/work" if os.path.isdir("/hwe/work") else os.getcwd()
    for d in ("/tmp", private):
        with open(os.path.join(d, "private-python-@ID@.txt"), "w") as f:
            f.write("private data of another run")
    with open("/tmp/cwd-python-@ID@", "w") as f:
        f.write(private)
    while not os.path.exists("/tmp/release-@ID@"):
        time.sleep(0.05)
    return {"left": True}
]],
    },
    javascript = {
      language = "javascript",
      timeout = wait .. "s",
      code = [[
const fs = require('fs');
const path = require('path');

async function run() {
  const priv = fs.existsSync('/hwe/work') ? '/hwe/work' : process.cwd();
  for (const d of ['/tmp', priv]) {
    fs.writeFileSync(path.join(d, 'private-javascript-@ID@.txt'), 'private data of another run');
  }
  fs.writeFileSync('/tmp/cwd-javascript-@ID@', priv);
  while (!fs.existsSync('/tmp/release-@ID@')) {
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return { left: true };
}
]],
    },
    shell = {
      language = "shell",
      timeout = wait .. "s",
      code = [[
private=$PWD
[ -d /hwe/work ] && private=/hwe/work
for d in /tmp "$private"; do echo 'private data of another run' > "$d/private-shell-@ID@.txt"; done
printf '%s' "$private" > /tmp/cwd-shell-@ID@
while [ ! -e /tmp/release-@ID@ ]; do sleep 0.05; done
echo '{"left": true}'
]],
    },
  },
}
