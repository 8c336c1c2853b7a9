-- The reference engine's behaviours that its example workflows depend on
-- (seed-behaviour.md 9.1), each exercised by a step written for hwe.
-- Checked by plugins/internal/e2e against reference_quirks.golden.json.
workflow = {
  name = "reference_quirks",
  description = "Reference behaviours the examples rely on, across Python, JavaScript, shell and Lua",

  steps = {
    -- A root Python step: run() takes no argument.
    seed = {
      language = "python",
      code = [[
def run():
    print("seeding")
    return {"numbers": [3, 1, 4, 1, 5], "ratio": 1.0, "label": "it's"}
]],
    },

    -- Shell scripts grep "key":value out of compact JSON in INPUT_*.
    grep_count = {
      language = "bash",
      depends_on = { "seed" },
      code = [[
run() {
    local data=$(parse_input "seed")
    local ratio=$(echo "$data" | grep -o '"ratio":[0-9.]*' | cut -d: -f2)
    echo "{\"ratio_text\": \"$ratio\", \"has_label\": $(echo "$INPUT_SEED" | grep -c '"label":"it')}"
}
]],
    },

    -- Multi-line JSON on stdout is not recognised: the wrapper is the output.
    pretty_report = {
      language = "shell",
      depends_on = { "grep_count" },
      code = [[
run() {
    echo "=== report ==="
    cat <<EOF
{
  "report": {"ratio": "$(parse_input grep_count | grep -o '"ratio_text":"[^"]*"' | cut -d'"' -f4)"},
  "status": "report_generated"
}
EOF
}
]],
    },

    -- Later steps read the wrapper's stdout field.
    read_wrapper = {
      language = "python",
      depends_on = { "pretty_report" },
      code = [[
def run(inputs):
    import json, re
    wrapper = inputs["pretty_report"]
    body = json.loads(re.search(r"\{.*\}", wrapper["stdout"], re.DOTALL).group(0))
    return {"exit_code": wrapper["exit_code"], "stderr": wrapper["stderr"], "ratio": body["report"]["ratio"]}
]],
    },

    -- Shell steps without run and with plain output succeed (parallel_demo).
    plain_task = {
      language = "sh",
      depends_on = { "seed" },
      code = [[
echo "Task: starting"
echo "result_plain"
]],
    },

    -- run(inputs=None) works on a step with inputs; a bare string is kept.
    optional_arg = {
      language = "python",
      depends_on = { "plain_task" },
      code = [[
def run(inputs=None):
    return "result_" + str(len(inputs))
]],
    },

    -- JavaScript: primitives are wrapped, numbers pass through doubles.
    js_stats = {
      language = "javascript",
      depends_on = { "seed" },
      code = [[
function run(inputs) {
  console.log("computing");
  const n = inputs.seed.numbers;
  return { max: Math.max(...n), sorted: [...n].sort(), ratio: inputs.seed.ratio };
}
]],
    },

    js_count = {
      language = "js",
      depends_on = { "js_stats" },
      code = [[
function run(inputs) {
  return inputs.js_stats.sorted.length;
}
]],
    },

    -- An empty Lua table becomes {}, which Python then len()s.
    lua_empty = {
      language = "lua",
      depends_on = { "js_count" },
      code = [[
function run(inputs)
  local picks = {}
  if inputs.js_count.value > 10 then picks[1] = "many" end
  return { picks = picks, count = inputs.js_count.value }
end
]],
    },

    final = {
      language = "python",
      depends_on = { "lua_empty", "read_wrapper", "optional_arg" },
      code = [[
def run(inputs):
    return {
        "picks": len(inputs["lua_empty"]["picks"]),
        "picks_type": type(inputs["lua_empty"]["picks"]).__name__,
        "ratio": inputs["read_wrapper"]["ratio"],
        "optional": inputs["optional_arg"],
    }
]],
    },
  },
}
