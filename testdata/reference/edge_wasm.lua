-- WASM result object rules of the reference runner (seed-behaviour.md 3.5).
-- Not a reference example. Module paths are relative to the working
-- directory (the repository root), as in the reference. Expected outputs
-- are in host/cmd/hwe/reference_test.go.
workflow = {
    name = "edge_wasm",
    steps = {
        -- no inputs: no input_summary key, input_count 0; default func "run"
        root_call = {
            language = "wasm",
            module = "workflows/example_wasm_module.wasm"
        },
        an_array = {
            language = "python",
            code = [[
def run():
    return [1, 2, 3]
]]
        },
        a_string = {
            language = "lua",
            code = [[
function run()
    return "initialized"
end
]]
        },
        a_number = {
            language = "python",
            code = [[
def run():
    return 42
]]
        },
        a_bool = {
            language = "python",
            code = [[
def run():
    return True
]]
        },
        a_null = {
            language = "python",
            code = [[
def run():
    return None
]]
        },
        -- one input_summary entry per input, by JSON type
        typed_inputs = {
            language = "webassembly",
            depends_on = {"an_array", "a_string", "a_number", "a_bool", "a_null", "root_call"},
            module = "workflows/example_wasm_module.wasm",
            ["function"] = "complex_computation"
        },
        -- return codes 1..10 are warnings: status "error", the step succeeds
        warning_code = {
            language = "wasm",
            module = "testdata/wasm/reference.wasm",
            func = "rc10"
        }
    }
}
