-- Attack: allocate 4 GiB, once in one piece and once in 1 MiB pieces
-- written to (so the memory is really used). The pieces steps are granted
-- 256 MiB (allow.memory), which must be the limit they meet.
local small = { memory = "256MiB" }
workflow = {
  name = "attack_alloc_4gib",
  steps = {
    python = {
      language = "python",
      code = [[
def run():
    return {"escaped": len(bytearray(4 << 30))}
]],
    },
    python_pieces = {
      language = "python",
      allow = small,
      code = [[
def run():
    held = [bytearray(b"x" * (1 << 20)) for _ in range(4096)]
    return {"escaped": len(held)}
]],
    },
    javascript = {
      language = "javascript",
      code = [[
function run() {
  return { escaped: Buffer.alloc(4 * 1024 * 1024 * 1024 - 1).length };
}
]],
    },
    javascript_pieces = {
      language = "javascript",
      allow = small,
      code = [[
function run() {
  const held = [];
  for (let i = 0; i < 4096; i++) held.push(Buffer.alloc(1 << 20, 1));
  return { escaped: held.length };
}
]],
    },
    -- bash keeps a command substitution's output in memory.
    shell = {
      language = "shell",
      allow = small,
      code = [[
x=$(head -c 4294967296 /dev/zero | tr '\0' x)
printf '{"escaped": %d}\n' "${#x}"
]],
    },
    -- string.rep is the one way to ask for 4 GiB at once in Lua.
    lua = {
      code = [[
function run()
  return { escaped = #string.rep("x", 4 * 1024 * 1024 * 1024) }
end
]],
    },
    lua_pieces = {
      allow = small,
      code = [[
function run()
  local held = {}
  local piece = string.rep("x", 1024 * 1024 - 1)
  for i = 1, 4096 do held[i] = piece .. i end
  return { escaped = #held }
end
]],
    },
    -- Not an attack: a Lua step that runs while lua_pieces grows the heap.
    -- It stays under every limit and must succeed.
    lua_neighbour = {
      code = [[
function run()
  local t0 = os.clock()
  while os.clock() - t0 < 2 do end
  return { ok = true }
end
]],
    },
    wasm = { language = "wasm", module = "@WASM@", func = "alloc" },
    wasm_pieces = { language = "wasm", module = "@WASM@", func = "alloc_touch", allow = small },
  },
}
