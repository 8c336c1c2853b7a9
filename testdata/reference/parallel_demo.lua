-- Reconstruction of the reference engine's workflows/parallel_demo.lua
-- (seed-behaviour.md 9 item 8): four levels, init -> {task_a, task_b,
-- task_c, task_d} -> merge_results -> finalize. Quirks it depends on (9.1):
--  * shell steps without a run function and with plain-text output succeed,
--    wrapped as {exit_code, stderr, stdout};
--  * Lua and Python steps return bare strings, kept as JSON strings;
--  * task_b declares run(inputs=None); task_c's run() ignores its inputs;
--  * some code blocks end with an indented ]], so the code's last line is
--    only spaces.
workflow = {
    name = "parallel_demo",
    description = "Independent tasks that can run in parallel",

    steps = {
        init = {
            language = "lua",
            code = [[
function run()
    print("🚀 Initializing parallel demo...")
    return "initialized"
end
]]
        },

        task_a = {
            language = "bash",
            depends_on = {"init"},
            code = [[
echo "Task A: Starting data processing..."
sleep 1
echo "Task A: Processing complete"
echo "result_a"
      ]]
        },

        task_b = {
            language = "python",
            depends_on = {"init"},
            code = [[
def run(inputs=None):
    print("Task B: Computing sum...")
    total = sum(range(1000000))
    print(f"Task B: Sum is {total}")
    return "result_b"
      ]]
        },

        task_c = {
            language = "lua",
            depends_on = {"init"},
            code = [[
function run()
    print("Task C: Busy for one second of CPU...")
    local start = os.clock()
    while os.clock() - start < 1 do
        -- spin
    end
    print("Task C: Done")
    return "result_c"
end
]]
        },

        task_d = {
            language = "shell",
            depends_on = {"init"},
            code = [[
echo "Task D: Starting file operations..."
sleep 1
echo "Task D: File operations complete"
echo "result_d"
]]
        },

        merge_results = {
            language = "lua",
            depends_on = {"task_a", "task_b", "task_c", "task_d"},
            code = [[
function run(inputs)
    print("Merging results from all tasks:")
    for name, value in pairs(inputs) do
        print("  " .. name .. ": " .. tostring(value))
    end
    return "all_tasks_completed"
end
]]
        },

        finalize = {
            language = "bash",
            depends_on = {"merge_results"},
            code = [[
echo "✅ Workflow finalized successfully"
echo "All parallel tasks completed"
]]
        }
    }
}
