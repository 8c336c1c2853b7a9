-- A third-party runner in a workflow: `language = "sql"` is served by the
-- hwe-runner-sql plugin (plugins/sql-runner, built by `make plugins`), found
-- on HWE_PLUGIN_PATH. Each dependency's output is a row of the `inputs`
-- table; the rows of the last statement are the step's output.
workflow = {
  name = "sql_pipeline",
  description = "Python produces sales, SQL aggregates them, Lua reports",
  steps = {
    sales = {
      language = "python",
      code = [[
def run():
    return [
        {"region": "north", "amount": 120},
        {"region": "south", "amount": 80},
        {"region": "north", "amount": 30},
        {"region": "east", "amount": 55},
    ]
]],
    },
    totals = {
      language = "sql",
      depends_on = { "sales" },
      code = [[
SELECT json_extract(s.value, '$.region') AS region,
       SUM(json_extract(s.value, '$.amount')) AS total
FROM inputs, json_each(inputs.value) AS s
WHERE inputs.step = 'sales'
GROUP BY region
ORDER BY total DESC;
]],
    },
    report = {
      language = "lua",
      depends_on = { "totals" },
      code = [[
function run(inputs)
  local top = inputs.totals[1]
  return { top_region = top.region, top_total = top.total, regions = #inputs.totals }
end
]],
    },
  },
}
