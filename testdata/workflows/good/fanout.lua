-- Steps built with a loop: a fan-out of 8 workers and a fan-in that sums them.
local steps = {
  seed = { code = [[function run() return { base = 100 } end]] },
}
local names = {}
for i = 1, 8 do
  local name = "worker_" .. i
  names[#names + 1] = name
  steps[name] = {
    depends_on = { "seed" },
    code = "function run(inputs) return inputs.seed.base + " .. i .. " end",
  }
end
steps.total = {
  depends_on = names,
  code = [[
function run(inputs)
  local sum = 0
  for name, v in pairs(inputs) do sum = sum + v end
  return { sum = sum }
end
]],
}
workflow = { name = "fanout", concurrency = 4, steps = steps }
