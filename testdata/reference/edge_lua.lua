-- Lua <-> JSON conversion rules of the reference runner (seed-behaviour.md
-- 2.1, 3.3 and the edge behaviours in 10). Not a reference example.
-- Expected outputs are in host/cmd/hwe/reference_test.go. The one known
-- difference: gopher-lua has no integer/float distinction, so 10/2 is 5,
-- not 5.0.
workflow = {
    name = "edge_lua",
    steps = {
        numbers = {
            language = "lua",
            code = [[
function run()
    return { x = 10 / 2, z = 2 ^ 2, third = 1 / 4, nan = 0 / 0, inf = math.huge }
end
]]
        },
        sparse = {
            language = "lua",
            code = [[
function run()
    return { [1] = "a", [3] = "c" }
end
]]
        },
        mixed_keys = {
            language = "lua",
            code = [[
function run()
    return { 1, 2, k = "v" }
end
]]
        },
        empty_table = {
            language = "lua",
            code = [[
function run()
    return {}
end
]]
        },
        bare_string = {
            code = [[
function run()
    return "initialized"
end
]]
        },
        returns_nothing = {
            language = "lua",
            code = [[
function run()
    print("side effect only")
end
]]
        },
        -- a root step gets run() with no argument
        root_argument = {
            language = "lua",
            code = [[
function run(inputs)
    return { got_inputs = inputs ~= nil }
end
]]
        },
        -- the first return value only
        two_values = {
            language = "lua",
            code = [[
function run()
    return { first = true }, { second = true }
end
]]
        },
        json_source = {
            language = "python",
            code = [[
def run():
    return {"holes": [1, None, 3], "obj": {"k": None, "j": 1}, "empty": [], "nested": {"list": [{"a": 1}]}}
]]
        },
        -- JSON null becomes nil: array holes round-trip, null keys vanish,
        -- and [] comes back as {}
        round_trip = {
            language = "lua",
            depends_on = {"json_source"},
            code = [[
function run(inputs)
    local src = inputs.json_source
    return {
        holes = src.holes,
        obj = src.obj,
        empty = src.empty,
        nested_a = src.nested.list[1].a,
        holes_len_ok = src.holes[3] == 3 and src.holes[2] == nil
    }
end
]]
        },
        os_and_string_helpers = {
            language = "lua",
            code = [[
function run()
    local start = os.clock()
    local t = os.time()
    return {
        clock_is_number = type(start) == "number",
        time_is_number = type(t) == "number",
        date = os.date("%Y") ~= nil,
        formatted = string.format("%.1f%%", 25),
        upper = string.upper("abc"),
        floor = math.floor(7 / 2),
        concat = table.concat({"a", "b", "c"}, ","),
        tostring_table = tostring({}):match("^table: ") ~= nil
    }
end
]]
        }
    }
}
