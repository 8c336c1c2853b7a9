-- JSON <-> Lua rules: empty table is {}, sparse arrays get nulls, nulls vanish
-- from objects, integral numbers print as integers (Lua 5.1 has no integer type).
workflow = {
  name = "conversions",
  steps = {
    make = { code = [[
function run()
  return { empty = {}, sparse = {[1]='a',[3]='c'}, mixed = {1, 2, k = 'v'}, half = 10/2, third = 1/4, s = "<tag> & \"q\"" }
end]] },
    echo = { depends_on = { "make" }, code = [[
function run(inputs)
  return inputs.make
end]] },
    bare = { code = [[function run() return "initialized" end]] },
    nothing = { code = [[function run() end]] },
  },
}
