-- The host API: every step reaches the outside only through hwe's one
-- capability-checked API, from every language, and only for what its
-- `allow` asks for (and the policy grants). Here each language writes to
-- and reads from the workflow's KV store; the last step shows a refusal.
workflow = {
  name = "host_api_demo",
  description = "KV, logs and progress through the host API from Lua, Python, JavaScript and shell",
  steps = {
    lua_writes = {
      language = "lua",
      allow = { kv = true },
      code = [[
function run()
  hwe.log("lua: saving the batch size")
  hwe.kv_put("batch_size", "250")
  hwe.progress(1.0, "saved")
  return { saved = "batch_size" }
end
]],
    },

    python_reads = {
      language = "python",
      depends_on = { "lua_writes" },
      allow = { kv = true },
      code = [[
import hwe

def run(inputs):
    size = int(hwe.kv_get(inputs["lua_writes"]["saved"]))
    hwe.kv_put("batches", str(1000 // size))
    hwe.log("python: %d batches of %d" % (1000 // size, size))
    return {"batch_size": size, "batches": 1000 // size}
]],
    },

    js_reads = {
      language = "javascript",
      depends_on = { "python_reads" },
      allow = { kv = true },
      code = [[
const hwe = require('hwe');

async function run(inputs) {
  const batches = Number(await hwe.kv_get('batches'));
  await hwe.progress(0.5, 'half way');
  return { batches, matches_python: batches === inputs.python_reads.batches };
}
]],
    },

    shell_reads = {
      language = "shell",
      depends_on = { "js_reads" },
      allow = { kv = true },
      code = [[
size=$(hwe-host kv-get batch_size)
hwe-host log "shell: batch size is $size"
echo "{\"batch_size_from_shell\":$size}"
]],
    },

    denied = {
      language = "python",
      depends_on = { "shell_reads" },
      code = [[
import hwe

def run(inputs):
    # This step asked for nothing, so the host refuses the secret.
    try:
        hwe.secret("API_TOKEN")
        return {"refused": False}
    except hwe.DeniedError as e:
        return {"refused": True, "capability": e.capability}
]],
    },
  },
}
