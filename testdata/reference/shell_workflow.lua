-- Reconstruction of the reference engine's workflows/shell_workflow.lua
-- (seed-behaviour.md 9 item 3). Quirks it depends on (9.1):
--  * analyze_results greps "count": out of parse_input, so INPUT_* must hold
--    compact JSON (no space after ':');
--  * generate_report prints multi-line JSON from a heredoc, which the shell
--    runner never recognises: its output is the {exit_code,stderr,stdout}
--    wrapper;
--  * the top-level `import json` of process_with_python is unused (the
--    reference does not make top-level names visible inside run).
workflow = {
    name = "shell_data_pipeline",
    description = "Shell and Python steps passing JSON through INPUT_ variables",

    steps = {
        init_data = {
            language = "bash",
            code = [[
run() {
    echo "Initializing data..." >&2
    # printed with spaces; the engine stores it compact, which the greps
    # further down rely on
    echo '{"numbers": [1, 2, 3, 4, 5], "status": "initialized"}'
}
]]
        },

        process_with_python = {
            language = "python",
            depends_on = {"init_data"},
            code = [[
import json

def run(inputs):
    numbers = inputs["init_data"]["numbers"]
    doubled = [n * 2 for n in numbers]
    return {"doubled": doubled, "count": len(doubled)}
]]
        },

        analyze_results = {
            language = "shell",
            depends_on = {"process_with_python"},
            code = [[
run() {
    local data=$(parse_input "process_with_python")
    local count=$(echo "$data" | grep -o '"count":[0-9]*' | cut -d: -f2)
    local sum=0
    for n in 2 4 6 8 10; do
        sum=$((sum + n))
    done
    echo "Analyzed $count values" >&2
    echo "{\"analysis\": \"completed\", \"count\": $count, \"sum\": $sum, \"shell_processed\": true}"
}
]]
        },

        generate_report = {
            language = "bash",
            depends_on = {"analyze_results"},
            code = [[
run() {
    local count=$(echo "$INPUT_ANALYZE_RESULTS" | grep -o '"count":[0-9]*' | cut -d: -f2)
    local sum=$(echo "$INPUT_ANALYZE_RESULTS" | grep -o '"sum":[0-9]*' | cut -d: -f2)
    cat <<EOF
{
  "report": {
    "timestamp": "$(date '+%Y-%m-%d %H:%M:%S')",
    "items_analyzed": $count,
    "total": $sum
  },
  "status": "report_generated"
}
EOF
}
]]
        }
    }
}
