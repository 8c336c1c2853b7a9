-- Reconstruction of the reference engine's workflows/workflow.lua
-- (seed-behaviour.md 9 item 1): an all-Lua three step pipeline.
workflow = {
    name = "data_pipeline",
    description = "Simple data processing pipeline using Lua",

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
            depends_on = {"fetch_data"},
            code = [[
function run(inputs)
    local processed = {}
    for i, v in ipairs(inputs.fetch_data.data) do
        processed[i] = v * 2
    end
    return { processed = processed }
end
]]
        },

        store_data = {
            language = "lua",
            depends_on = {"process_data"},
            code = [[
function run(inputs)
    print("Storing " .. #inputs.process_data.processed .. " items...")
    return { success = true }
end
]]
        }
    }
}
