-- Attack: return a gigantic output (100 MB). A step's output is capped by
-- its grant's max_output (the local policy's 16 MiB); the step must fail
-- saying so, and hwe must not hold the whole thing to find out. The
-- in-process runners are in giant_output_inprocess.lua.
local timeout = "60s"
workflow = {
  name = "attack_giant_output",
  steps = {
    python = {
      language = "python",
      timeout = timeout,
      code = [[
def run():
    return "x" * 100_000_000
]],
    },
    javascript = {
      language = "javascript",
      timeout = timeout,
      code = [[
function run() {
  return { x: 'x'.repeat(100_000_000) };
}
]],
    },
    -- A shell step's output is the first one-line JSON object it prints.
    shell = {
      language = "shell",
      timeout = timeout,
      code = [[
printf '{"x": "'
head -c 100000000 /dev/zero | tr '\0' x
printf '"}\n'
]],
    },
  },
}
