-- Attack: write 100 MB (@FLOOD_BYTES@: the test makes it less under the
-- race detector, which slows hwe's side down) to stdout, in 1 KiB lines and as one line without
-- a newline. What a step prints goes to its log, which hwe caps (16 MiB per
-- step, lines at 64 KiB); the flood must not grow hwe's memory (or its
-- plugins') with its size, and must end within the step's timeout. The
-- in-process runners flood in stdout_flood_inprocess.lua, so that what
-- they hold in hwe's own memory does not count here.
local timeout = "60s"
workflow = {
  name = "attack_stdout_flood",
  steps = {
    python = {
      language = "python",
      timeout = timeout,
      code = [[
import sys

def run():
    line = "x" * 1023 + "\n"
    for _ in range(@FLOOD_BYTES@ // 1024):
        sys.stdout.write(line)
    return {"written": True}
]],
    },
    python_one_line = {
      language = "python",
      timeout = timeout,
      code = [[
import sys

def run():
    chunk = "x" * (1 << 20)
    for _ in range(@FLOOD_BYTES@ >> 20):
        sys.stdout.write(chunk)
    return {"written": True}
]],
    },
    javascript = {
      language = "javascript",
      timeout = timeout,
      code = [[
function run() {
  const line = 'x'.repeat(1023) + '\n';
  const chunk = line.repeat(1024);
  for (let i = 0; i < @FLOOD_BYTES@ / chunk.length; i++) process.stdout.write(chunk);
  return { written: true };
}
]],
    },
    javascript_one_line = {
      language = "javascript",
      timeout = timeout,
      code = [[
function run() {
  const chunk = 'x'.repeat(1 << 20);
  for (let i = 0; i < @FLOOD_BYTES@ >> 20; i++) process.stdout.write(chunk);
  return { written: true };
}
]],
    },
    shell = {
      language = "shell",
      timeout = timeout,
      code = [[
head -c @FLOOD_BYTES@ /dev/zero | tr '\0' x | fold -w 1023
echo '{"written": true}'
]],
    },
    shell_one_line = {
      language = "shell",
      timeout = timeout,
      code = [[
head -c @FLOOD_BYTES@ /dev/zero | tr '\0' x
echo
echo '{"written": true}'
]],
    },
  },
}
