-- Attack: read /etc/shadow (the host's password hashes). The system folders
-- are readable inside the sandbox; this file must not be.
workflow = {
  name = "attack_read_shadow",
  steps = {
    python = {
      language = "python",
      code = [[
def run():
    with open("/etc/shadow") as f:
        return {"escaped": f.read()}
]],
    },
    javascript = {
      language = "javascript",
      code = [[
const fs = require('fs');

function run() {
  return { escaped: fs.readFileSync('/etc/shadow', 'utf8') };
}
]],
    },
    shell = {
      language = "shell",
      code = [[
content=$(cat /etc/shadow)
printf '{"escaped": %d}\n' "${#content}"
]],
    },
    -- Lua steps have no io library: the attempt is an error about io.
    lua = {
      code = [[
function run()
  return { escaped = io.open("/etc/shadow"):read("*a") }
end
]],
    },
    wasm = { language = "wasm", module = "@WASM@", func = "read_files", env = { TARGETS = "/etc/shadow" } },
  },
}
