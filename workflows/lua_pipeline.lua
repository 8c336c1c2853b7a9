-- A pure-Lua data pipeline: generate readings, clean them, compute statistics
-- and a report. Each step's return value is handed, as JSON, to the steps that
-- list it in depends_on, under the dependency's name.
workflow = {
  name = "lua_pipeline",
  description = "Generate, clean and summarise sensor readings in Lua",
  steps = {
    generate = {
      language = "lua",
      code = [[
function run()
  local readings = {}
  for i = 1, 12 do
    -- a deterministic wave with two bad values
    local v = 20 + (i % 5) * 1.5
    if i == 4 then v = -999 end
    if i == 9 then v = 999 end
    readings[#readings + 1] = { id = i, celsius = v }
  end
  print("generated " .. #readings .. " readings")
  return { sensor = "greenhouse-1", readings = readings }
end
]],
    },

    clean = {
      language = "lua",
      depends_on = { "generate" },
      code = [[
function run(inputs)
  local kept, dropped = {}, {}
  for _, r in ipairs(inputs.generate.readings) do
    if r.celsius > -50 and r.celsius < 60 then
      kept[#kept + 1] = r
    else
      dropped[#dropped + 1] = r.id
    end
  end
  return { sensor = inputs.generate.sensor, readings = kept, dropped = dropped }
end
]],
    },

    stats = {
      language = "lua",
      depends_on = { "clean" },
      code = [[
function run(inputs)
  local sum, lo, hi = 0, math.huge, -math.huge
  local rs = inputs.clean.readings
  for _, r in ipairs(rs) do
    sum = sum + r.celsius
    lo = math.min(lo, r.celsius)
    hi = math.max(hi, r.celsius)
  end
  return { count = #rs, mean = sum / #rs, min = lo, max = hi }
end
]],
    },

    report = {
      language = "lua",
      depends_on = { "clean", "stats" },
      code = [[
function run(inputs)
  local s = inputs.stats
  local line = string.format("%s: %d readings, mean %.2f C (range %.1f..%.1f), %d dropped",
    inputs.clean.sensor, s.count, s.mean, s.min, s.max, #inputs.clean.dropped)
  print(line)
  return { summary = line, alert = s.max > 25 }
end
]],
    },
  },
}
