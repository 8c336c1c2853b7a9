-- Parallel demo: after `init`, four independent tasks in four languages run
-- at the same time (hwe starts a step as soon as its own dependencies are
-- done, not level by level), then `merge` fans them in and `finalize` ends.
-- Run it with --concurrency 1 to see the same work done one step at a time.
workflow = {
  name = "parallel_demo",
  description = "Fan-out of shell, Python and Lua tasks, then a fan-in",
  steps = {
    init = {
      language = "lua",
      code = [[
function run()
  return "initialized"
end
]],
    },

    -- Shell without a run function: top-level commands run, and since the
    -- output is not a one-line JSON object it comes back wrapped as
    -- {exit_code, stderr, stdout}.
    task_a = {
      language = "shell",
      depends_on = { "init" },
      code = [[
echo "Task A: indexing..."
sleep 1
echo "result_a"
]],
    },

    task_b = {
      language = "python",
      depends_on = { "init" },
      code = [[
def run(inputs=None):
    total = sum(range(1_000_000))
    return {"task": "b", "sum": total, "after": inputs["init"]}
]],
    },

    task_c = {
      language = "lua",
      depends_on = { "init" },
      code = [[
function run(inputs)
  local start = os.clock()
  local n = 0
  while os.clock() - start < 0.5 do n = n + 1 end
  return "result_c"
end
]],
    },

    task_d = {
      language = "javascript",
      depends_on = { "init" },
      code = [[
async function run(inputs) {
  await new Promise(resolve => setTimeout(resolve, 1000));
  return { task: "d", waited_ms: 1000 };
}
]],
    },

    merge = {
      language = "lua",
      depends_on = { "task_a", "task_b", "task_c", "task_d" },
      code = [[
function run(inputs)
  local names = {}
  for name in pairs(inputs) do names[#names + 1] = name end
  table.sort(names)
  print("merging " .. table.concat(names, ", "))
  return {
    merged = names,
    a = inputs.task_a.stdout:match("result_a") ~= nil,
    b = inputs.task_b.sum,
    c = inputs.task_c,
    d = inputs.task_d.waited_ms,
  }
end
]],
    },

    finalize = {
      language = "shell",
      depends_on = { "merge" },
      code = [[
count=$(parse_input merge | grep -o '"task_' | wc -l)
echo "{\"finalized\":true,\"tasks_merged\":$count}"
]],
    },
  },
}
