-- Steps the reference runners fail (seed-behaviour.md 3 and 10), each
-- independent so that `hwe run --keep-going` reports every one. Not a
-- reference example. Expected errors are in host/cmd/hwe/reference_test.go.
workflow = {
    name = "edge_errors",
    steps = {
        -- a root step calls run() with no argument
        python_root_takes_inputs = {
            language = "python",
            code = [[
def run(inputs):
    return inputs
]]
        },
        python_source = {
            language = "python",
            code = [[
def run():
    return {"ok": True}
]]
        },
        -- ...and a step with dependencies calls run(inputs)
        python_deps_takes_nothing = {
            language = "python",
            depends_on = {"python_source"},
            code = [[
def run():
    return {}
]]
        },
        python_no_run = {
            language = "python",
            code = [[
def start():
    return {}
]]
        },
        python_run_not_callable = {
            language = "python",
            code = [[
run = 5
]]
        },
        python_exception = {
            language = "python",
            code = [[
def run():
    return 1 / 0
]]
        },
        python_unserialisable = {
            language = "python",
            code = [[
def run():
    return {"s": {1, 2}}
]]
        },
        -- the runner defines `process` before the step's code
        js_declares_process = {
            language = "javascript",
            code = [[
const process = {};
function run() {
    return {};
}
]]
        },
        js_throws = {
            language = "javascript",
            code = [[
function run() {
    throw new Error("boom");
}
]]
        },
        js_no_run = {
            language = "javascript",
            code = [[
function start() {
    return {};
}
]]
        },
        shell_exit = {
            language = "bash",
            code = [[
echo "about to fail" >&2
exit 3
]]
        },
        -- set -e applies to the top level too
        shell_set_e = {
            language = "bash",
            code = [[
false
echo '{"unreachable":true}'
]]
        },
        lua_runtime_error = {
            language = "lua",
            code = [[
function run()
    error("lua failed")
end
]]
        },
        wasm_out_of_range = {
            language = "wasm",
            module = "testdata/wasm/reference.wasm",
            func = "rc11"
        },
        wasm_trap = {
            language = "wasm",
            module = "testdata/wasm/reference.wasm",
            func = "trap"
        }
    }
}
