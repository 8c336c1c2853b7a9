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
  for _ = 1, @FLOOD_BYTES@ / 1024 do print(line) end
  return { written = true }
end
]],
    },
    lua_one_line = {
      timeout = timeout,
      code = [[
function run()
  local chunk, parts = string.rep("x", @FLOOD_BYTES@ / 10), {}
  for i = 1, 10 do parts[i] = chunk end
  print(table.concat(parts))
  return { written = true }
end
]],
    },
    wasm = { language = "wasm", module = "@WASM@", func = "stdout_flood", timeout = timeout, env = { FLOOD_BYTES = "@FLOOD_BYTES@" } },
  },
}
