-- stdout_flood.lua for the in-process runners (Lua, WASM): their memory is
-- hwe's, bounded by their memory limits rather than by the log's caps.
local timeout = "60s"
workflow = {
  name = "attack_stdout_flood_inprocess",
  steps = {
    lua = {
      timeout = timeout,
      code = [[
function run()
  local line = string.rep("x", 1023)
  for _ = 1, 100000000 / 1024 do print(line) end
  return { written = true }
end
]],
    },
    lua_one_line = {
      timeout = timeout,
      code = [[
function run()
  local chunk, parts = string.rep("x", 10 * 1000 * 1000), {}
  for i = 1, 10 do parts[i] = chunk end
  print(table.concat(parts))
  return { written = true }
end
]],
    },
    wasm = { language = "wasm", module = "@WASM@", func = "stdout_flood", timeout = timeout },
  },
}
