-- JavaScript output rules of the reference runner (seed-behaviour.md 3.2 and
-- the edge behaviours in 10). Not a reference example: each step isolates
-- one rule. Expected outputs are in host/cmd/hwe/reference_test.go.
workflow = {
    name = "edge_javascript",
    steps = {
        -- return nothing, but log: stdout is "hi\n{}", whose last JSON line
        -- is exactly {} -> the raw wrapper
        log_then_nothing = {
            language = "javascript",
            code = [[
function run() {
    console.log("hi");
    return;
}
]]
        },
        -- nothing logged, nothing returned -> {}
        silent_nothing = {
            language = "javascript",
            code = [[
function run() {
}
]]
        },
        -- {} with a log line is also the raw wrapper
        log_then_empty_object = {
            language = "js",
            code = [[
function run() {
    console.log("working");
    return {};
}
]]
        },
        return_number = {
            language = "javascript",
            code = [[
function run() {
    return 5;
}
]]
        },
        return_string = {
            language = "node",
            code = [[
function run() {
    return "x";
}
]]
        },
        return_bool = {
            language = "nodejs",
            code = [[
function run() {
    return true;
}
]]
        },
        return_array = {
            language = "javascript",
            code = [[
function run() {
    return [1, 2];
}
]]
        },
        -- a Promise stringifies to {}: async is not awaited
        async_run = {
            language = "javascript",
            code = [[
async function run() {
    return { never: "seen" };
}
]]
        },
        -- outputResult prints an extra line; the last JSON line (the return
        -- value) wins
        output_result_then_return = {
            language = "javascript",
            code = [[
function run() {
    outputResult({ from: "outputResult" });
    return { from: "return" };
}
]]
        },
        -- ...and with nothing returned the last line is {} -> raw wrapper
        output_result_only = {
            language = "javascript",
            code = [[
function run() {
    outputResult({ from: "outputResult" });
}
]]
        },
        -- a root step gets run() with no argument
        root_arguments = {
            language = "javascript",
            code = [[
function run() {
    return { argc: arguments.length, inputs_type: typeof inputs, input_keys: Object.keys(inputs).length };
}
]]
        },
        float_source = {
            language = "python",
            code = [[
def run():
    return {"ten": 10.0, "half": 0.5}
]]
        },
        -- inputs is a global; numbers pass through JS doubles (10.0 -> 10)
        global_inputs = {
            language = "javascript",
            depends_on = {"float_source"},
            code = [[
function run() {
    return { argc: arguments.length, ten: inputs.float_source.ten, half: inputs.float_source.half };
}
]]
        }
    }
}
