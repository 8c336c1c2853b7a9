-- Python result conversion rules of the reference runner (seed-behaviour.md
-- 2.2 and 3.1). Not a reference example. Expected outputs are in
-- host/cmd/hwe/reference_test.go.
workflow = {
    name = "edge_python",
    steps = {
        -- json.dumps gives NaN, which is not JSON: the whole dump becomes a string
        nan = {
            language = "python",
            code = [[
def run():
    return float("nan")
]]
        },
        inf_in_object = {
            language = "python",
            code = [[
def run():
    return {"a": float("inf")}
]]
        },
        conversions = {
            language = "python",
            code = [[
def run():
    return {"tuple": (1, 2), 1: "int key", "float": 1.0, "big": 2 ** 70, "html": "<b>&</b>", "none": None}
]]
        },
        returns_nothing = {
            language = "python",
            code = [[
def run():
    print("nothing to return")
]]
        },
        bare_string = {
            language = "python",
            code = [[
def run():
    return "result_b"
]]
        },
        -- a root step calls run() with no argument, so a default is used
        optional_argument = {
            language = "python",
            code = [[
def run(inputs=None):
    return {"inputs_is_none": inputs is None}
]]
        },
        -- ...and with dependencies run(inputs) is called
        optional_argument_with_deps = {
            language = "python",
            depends_on = {"bare_string"},
            code = [[
def run(inputs=None):
    return {"keys": sorted(inputs.keys()), "value": inputs["bare_string"]}
]]
        },
        -- 9.1: the reference hides top-level names from run(); a Go port
        -- should make them visible (a strict improvement, README)
        top_level_helpers = {
            language = "python",
            code = [[
import json

def helper(x):
    return x * 2

def run():
    return {"doubled": helper(21), "dumped": json.dumps([1])}
]]
        }
    }
}
