-- The reference's pure-Lua shape: steps as a map, run() for the root step,
-- run(inputs) for the others, outputs keyed by dependency name.
workflow = {
  name = "data_pipeline",
  description = "fetch, process and store",
  steps = {
    fetch_data = {
      language = "lua",
      code = [[
function run()
  print("Fetching data...")
  return { data = {1, 2, 3, 4, 5} }
end
]]
    },
    process_data = {
      language = "lua",
      depends_on = { "fetch_data" },
      code = [[
function run(inputs)
  local processed = {}
  for i, v in ipairs(inputs.fetch_data.data) do processed[i] = v * 2 end
  return { processed = processed }
end
]]
    },
    store_data = {
      depends_on = { "process_data" },
      code = [[
function run(inputs)
  print("Storing " .. #inputs.process_data.processed .. " items...")
  return { success = true }
end
]]
    },
  }
}
