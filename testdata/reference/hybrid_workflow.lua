-- Reconstruction of the reference engine's workflows/hybrid_workflow.lua
-- (seed-behaviour.md 9 item 2): three Python steps. The root step takes no
-- argument; the others get the inputs dict.
workflow = {
    name = "hybrid_data_pipeline",
    description = "Data pipeline written in Python steps",

    steps = {
        fetch_data = {
            language = "python",
            code = [[
def run():
    print("Fetching data from Python...")
    return {"data": [1, 2, 3, 4]}
]]
        },

        process_data = {
            language = "python",
            depends_on = {"fetch_data"},
            code = [[
def run(inputs):
    data = inputs["fetch_data"]["data"]
    return {"processed": [x * 2 for x in data]}
]]
        },

        store_data = {
            language = "python",
            depends_on = {"process_data"},
            code = [[
def run(inputs):
    processed = inputs["process_data"]["processed"]
    print("Storing:", processed)
    return {"status": "done"}
]]
        }
    }
}
