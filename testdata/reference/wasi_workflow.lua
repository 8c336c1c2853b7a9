-- Reconstruction of the reference engine's examples/wasi_workflow.lua
-- (seed-behaviour.md 9 item 11). Its wasm step points at a module the
-- reference repository never builds, so the run fails at process_with_wasi
-- with "WASM module file not found". generate_summary reads
-- inputs.process_with_wasi, which would be nil there anyway: inputs hold
-- direct dependencies only (2).
workflow = {
    name = "wasi_demonstration",
    description = "WASI module with system access (needs a module that is not built)",

    steps = {
        prepare_data = {
            language = "python",
            code = [[
def run():
    print("Preparing data for the WASI module...")
    return {"message": "Hello from Python", "values": [10, 20, 30]}
]]
        },

        process_with_wasi = {
            language = "wasm",
            depends_on = {"prepare_data"},
            module = "wasm_modules/target/wasm32-unknown-unknown/release/wasm_modules.wasm",
            func = "run"
        },

        verify_results = {
            language = "javascript",
            depends_on = {"process_with_wasi"},
            code = [[
function run(inputs) {
    const exec = inputs.process_with_wasi.wasm_execution;
    return { verified: exec.status === "success", return_code: exec.return_code };
}
]]
        },

        generate_summary = {
            language = "lua",
            depends_on = {"verify_results"},
            code = [[
function run(inputs)
    local wasi = inputs.process_with_wasi
    return {
        verified = inputs.verify_results.verified,
        saw_wasi_output = wasi ~= nil
    }
end
]]
        }
    }
}
