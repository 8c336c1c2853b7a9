-- giant_output.lua for the in-process runners (Lua, WASM), whose memory
-- is hwe's, bounded by their memory limits.
local timeout = "60s"
workflow = {
  name = "attack_giant_output_inprocess",
  steps = {
    lua = {
      timeout = timeout,
      code = [[
function run()
  local chunk, parts = string.rep("x", @GIANT_BYTES@ / 10), {}
  for i = 1, 10 do parts[i] = chunk end
  return table.concat(parts)
end
]],
    },
    wasm = { language = "wasm", module = "@WASM@", func = "giant_output", timeout = timeout, env = { GIANT_BYTES = "@GIANT_BYTES@" } },
  },
}
