-- Shell output and input rules of the reference runner (seed-behaviour.md
-- 3.4 and the edge behaviours in 10). Not a reference example: each step
-- isolates one rule. Expected outputs are in host/cmd/hwe/reference_test.go.
workflow = {
    name = "edge_shell",
    steps = {
        -- two one-line JSON objects: the first wins
        two_json_lines = {
            language = "bash",
            code = [[
echo '{"first":1}'
echo '{"second":2}'
]]
        },
        -- arrays are never recognised: wrapper
        array_output = {
            language = "bash",
            code = [[
echo '[1,2]'
]]
        },
        -- plain output, stderr trimmed into the wrapper
        plain_with_stderr = {
            language = "sh",
            code = [[
echo "  Simple text output  "
echo "  Another line  " >&2
]]
        },
        -- the object line may be indented; lines that only look like JSON
        -- are skipped
        indented_object = {
            language = "shell",
            code = [[
echo "starting"
echo "{not json}"
echo "   {\"ok\":true}   "
]]
        },
        -- top-level commands run, then run(); no arguments are passed
        top_level_and_run = {
            language = "bash",
            code = [[
STARTED_AT_TOP=yes
run() {
    echo "{\"top\":\"$STARTED_AT_TOP\",\"argc\":$#}"
}
]]
        },
        -- no dependencies: no INPUT_ variables
        no_inputs = {
            language = "bash",
            code = [[
echo "{\"input_vars\":$(env | grep -c '^INPUT_' || true)}"
]]
        },
        source_data = {
            language = "python",
            code = [[
def run():
    return {"tag": "<b>&amp;</b>", "count": 3, "spaced": "a   b"}
]]
        },
        -- INPUT_* holds compact JSON with keys sorted and no HTML escaping
        grep_compact = {
            language = "bash",
            depends_on = {"source_data"},
            code = [[
run() {
    local count=$(echo "$INPUT_SOURCE_DATA" | grep -o '"count":[0-9]*' | cut -d: -f2)
    local tag=$(parse_input source_data | grep -c '"tag":"<b>&amp;</b>"')
    local first_key=$(echo "$INPUT_SOURCE_DATA" | cut -c1-9)
    echo "{\"count\":$count,\"tag_found\":$tag,\"starts\":\"${first_key//\"/\'}\"}"
}
]]
        },
        -- parse_input output, echoed as the result
        parse_input_echo = {
            language = "bash",
            depends_on = {"source_data"},
            code = [[
parse_input source_data
]]
        },
        quote_source = {
            language = "python",
            code = [[
def run():
    return {"label": "it's"}
]]
        },
        -- The reference pastes inputs into export INPUT_X='...', so a ' in the
        -- data is a bash syntax error there (10). hwe passes real environment
        -- variables (a deliberate fix, plugins/shell): the step succeeds.
        quote_consumer = {
            language = "bash",
            depends_on = {"quote_source"},
            code = [[
echo "{\"has_quote\":$(echo "$INPUT_QUOTE_SOURCE" | grep -c "it's")}"
]]
        },
        ["my-step"] = {
            language = "bash",
            code = [[
echo '{"from":"my-step"}'
]]
        },
        -- The reference's `export INPUT_MY-STEP=...` fails under set -e (10).
        -- hwe maps the name to INPUT_MY_STEP (a deliberate fix, plugins/shell).
        dash_consumer = {
            language = "bash",
            depends_on = {"my-step"},
            code = [[
echo "$INPUT_MY_STEP"
]]
        }
    }
}
