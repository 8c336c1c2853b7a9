-- Attack: a fork bomb. The step's processes are capped (the grant's
-- processes, by default the policy's), so the bomb must run out of room
-- and the step fail within its timeout, its processes gone afterwards and
-- the warm workers that later steps use unharmed. Lua and WASM steps cannot
-- start processes, so they have no step here.
workflow = {
  name = "attack_fork_bomb",
  steps = {
    -- Every child forks again: exponential, and each child is a copy of
    -- the warm worker (with its pipes to hwe).
    python = {
      language = "python",
      timeout = "10s",
      code = [[
import os

def run():
    while True:
        os.fork()
]],
    },
    javascript = {
      language = "javascript",
      timeout = "10s",
      code = [[
const { spawn } = require('child_process');

async function run() {
  for (let n = 0; ; n++) {
    const child = spawn('sleep', ['600'], { stdio: 'ignore' });
    await new Promise((resolve, reject) => {
      child.on('spawn', resolve);
      child.on('error', (e) => reject(new Error(`after ${n} processes: ${e.message}`)));
    });
  }
}
]],
    },
    -- The classic bomb, then a loop that forks until fork fails.
    shell = {
      language = "shell",
      timeout = "10s",
      code = [[
bomb() { bomb | bomb & }
bomb
while :; do sleep 600 & done
]],
    },
  },
}
