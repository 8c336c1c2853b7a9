-- Attack: return a gigantic output (100 MB; @GIANT_BYTES@ is less under the
-- race detector). A step's output is capped by
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
    return "x" * @GIANT_BYTES@
]],
    },
    javascript = {
      language = "javascript",
      timeout = timeout,
      code = [[
function run() {
  return { x: 'x'.repeat(@GIANT_BYTES@) };
}
]],
    },
    -- A shell step's output is the first one-line JSON object it prints.
    shell = {
      language = "shell",
      timeout = timeout,
      code = [[
printf '{"x": "'
head -c @GIANT_BYTES@ /dev/zero | tr '\0' x
printf '"}\n'
]],
    },
  },
}
