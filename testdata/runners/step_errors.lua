-- Failing steps, one per language: each error must name the line of this
-- file where it happened. Checked by plugins/internal/e2e.
workflow = {
  name = "step_errors",
  steps = {
    py_fails = {
      language = "python",
      code = [[
def ratio(a, b):
    return a / b

def run():
    return ratio(1, 0)
]],
    },
    js_fails = {
      language = "javascript",
      code = [[
function run() {
  const data = null;
  return data.field;
}
]],
    },
    sh_fails = {
      language = "bash",
      code = [[
echo "starting"
run() {
    grep -q needle /dev/null
    echo "not reached"
}
]],
    },
  },
}
