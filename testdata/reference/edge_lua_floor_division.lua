-- The reference runs Lua 5.4, where 7 // 2 is integer floor division (10:
-- {x=10/2, y=7//2, z=2^2} -> {"x":5.0,"y":3,"z":4.0}). Kept in its own file
-- because Lua 5.1 has no // operator.
workflow = {
    name = "edge_lua_floor_division",
    steps = {
        numbers = {
            language = "lua",
            code = [[
function run()
    return { x = 10 / 2, y = 7 // 2, z = 2 ^ 2 }
end
]]
        }
    }
}
