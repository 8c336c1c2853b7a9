-- Attack: read what the host has in its environment. The test sets
-- HWE_SECRET_X (a secret of the local secret store) and PLAIN_X (a plain
-- variable) in hwe's own environment, with values that contain @ID@. A
-- step without a grant must see neither: not in its environment, not in
-- any /proc/*/environ it can read, not through the host API (which must
-- refuse secret X, naming the capability). The control steps are granted
-- both (allow.secrets, allow.env) and must get them, which shows the values
-- were there to be had.
local grant = { secrets = { "X" }, env = { "PLAIN_X" } }
workflow = {
  name = "attack_secret_env",
  steps = {
    python = {
      language = "python",
      code = [[
import glob, hwe, os

def run():
    found = [k for k, v in os.environ.items() if "@ID@" in v or k in ("HWE_SECRET_X", "PLAIN_X")]
    for path in glob.glob("/proc/*/environ"):
        try:
            with open(path, "rb") as f:
                if b"@ID@" in f.read():
                    found.append(path)
        except OSError:
            pass
    if found:
        return {"escaped": found}
    return {"escaped": "secret of %d bytes" % len(hwe.secret("X"))}
]],
    },
    control_python = {
      language = "python",
      allow = grant,
      code = [[
import hwe, os

def run():
    return {"secret": len(hwe.secret("X")), "plain": len(os.environ["PLAIN_X"])}
]],
    },
    javascript = {
      language = "javascript",
      code = [[
const hwe = require('hwe');

async function run() {
  const found = Object.entries(process.env)
    .filter(([k, v]) => v.includes('@ID@') || k === 'HWE_SECRET_X' || k === 'PLAIN_X')
    .map(([k]) => k);
  if (found.length) return { escaped: found };
  const s = await hwe.secret('X');
  return { escaped: `secret of ${s.length} bytes` };
}
]],
    },
    control_javascript = {
      language = "javascript",
      allow = grant,
      code = [[
const hwe = require('hwe');

async function run() {
  return { secret: (await hwe.secret('X')).length, plain: process.env.PLAIN_X.length };
}
]],
    },
    shell = {
      language = "shell",
      code = [[
found=$(env | grep -e '@ID@' -e '^HWE_SECRET_X=' -e '^PLAIN_X=' | cut -d= -f1 | tr '\n' ' ' || true)
found="$found $(grep -l -s '@ID@' /proc/*/environ | tr '\n' ' ' || true)"
if [ -n "${found// }" ]; then printf '{"escaped": "%s"}\n' "$found"; exit 0; fi
s=$(hwe-host secret X)
printf '{"escaped": "secret of %d bytes"}\n' "${#s}"
]],
    },
    control_shell = {
      language = "shell",
      allow = grant,
      code = [[
s=$(hwe-host secret X)
printf '{"secret": %d, "plain": %d}\n' "${#s}" "${#PLAIN_X}"
]],
    },
    -- Lua steps have no os.getenv; the host API is their only way.
    lua = {
      code = [[
function run()
  return { escaped = "secret of " .. #hwe.secret("X") .. " bytes" }
end
]],
    },
    control_lua = {
      allow = grant,
      code = [[
function run()
  return { secret = #hwe.secret("X") }
end
]],
    },
    wasm = { language = "wasm", module = "@WASM@", func = "secret", env = { LOOK_FOR = "@ID@" } },
    control_wasm = { language = "wasm", module = "@WASM@", func = "secret_control", allow = grant },
  },
}
